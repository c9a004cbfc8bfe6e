"""Entry point the Dify daemon runs as `python -m main`: the process's wiring."""

from dify_plugin import DifyPluginEnv, Plugin

from provider.runtime_errors import install_error_reporting
from provider.runtime_stdout import install_whole_line_stdout

# Leave a margin under the daemon's own 600 s limit so our deadlines fire first.
plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=570))

if __name__ == "__main__":
    install_whole_line_stdout()  # a large message cut by a signal would be lost under PYTHONUNBUFFERED=1
    install_error_reporting()
    import services
    from jobs.lifecycle import install_shutdown  # job workers: graceful stop on SIGTERM or a closed pipe

    process_services = services.install(services.Services.create())
    install_shutdown(process_services.jobs)
    plugin.run()
