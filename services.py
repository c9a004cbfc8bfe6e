"""The plugin process's long-lived services, created once by the process's wiring (main.py) and handed
to what uses them. Nothing here is created at import: a module that imports this one gets no engine,
no thread and no Redis connection until the wiring installs them.

The tools (Dify's `Tool` classes are built by the SDK, which passes them nothing of ours) read them with
`current()`. Tests and dev tools build their own (`Services.create()`, or a `JobEngine` of their own)
and pass them in, or `install` them for code that reads `current()`. No Dify import here.
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from gateway.client import ClientRegistry
from gateway.state.backends import Backends
from jobs.queue import JobEngine


@dataclass
class Services:
    """What lives as long as the process. `gateway`: the gateway clients shared between invocations and
    the stores they count in (`gateway.client.ClientRegistry`: the in-process state, reply cache and
    metrics, which the metrics endpoint reads, and the Redis-backed ones per URL). `jobs`: the job engine,
    its workers, the Redis stores and gateways they work for (`jobs.queue`), on the same clients and stores."""

    gateway: ClientRegistry
    jobs: JobEngine

    @classmethod
    def create(cls) -> Services:
        gateway = ClientRegistry(Backends())
        return cls(gateway=gateway, jobs=JobEngine(gateway))


_installed: Services | None = None  # the process's, once install() is called: nothing is created at import
_flush_at_exit = False


def install(services: Services) -> Services:
    """Makes `services` the process's (what `current()` returns from now on); at exit, the figures its clients
    still hold for Redis are written (`flush_metrics`)."""
    global _installed, _flush_at_exit
    _installed = services
    if not _flush_at_exit:
        atexit.register(flush_metrics)
        _flush_at_exit = True
    return services


def current() -> Services:
    """The process's services, as installed by main.py (or a test)."""
    if _installed is None:
        raise RuntimeError(
            "no services installed in this process: main.py installs them before the plugin runs "
            "(services.install(services.Services.create())); a test or dev tool running tools in-process installs its own"
        )
    return _installed


def flush_metrics() -> None:
    """Writes the figures the installed services' clients hold for Redis now (`Backends.flush_metrics`): at the
    end of every tool invocation (tools/reporting.py) and at process exit (registered by `install`). Nothing installed,
    nothing to write."""
    if _installed is not None:
        _installed.gateway.backends.flush_metrics()


def uninstall() -> None:
    """Forgets the installed services (tests that installed their own)."""
    global _installed
    _installed = None
