"""Makes every protocol line the SDK writes to stdout arrive whole.

The SDK (dify_plugin 0.10) writes each message with `sys.stdout.write(line)` and `flush()`, and its log
handler holds `sys.stdout` too. Under `PYTHONUNBUFFERED=1` (common in container images, and inherited by
the plugin processes the daemon starts) `sys.stdout` is a text layer straight over a raw `FileIO`: a
pipe write that a signal interrupts part way returns short, the text layer ignores the count, and the
rest of the line is lost. The daemon then drops the cut line, and with it whatever it carried (seen: a
170 KB `results` page of `batch_results`, cut at 168 KiB while a profiler sampled the process). A
`BufferedWriter` writes everything it is given, so stdout gets one whatever the environment says.
"""

from __future__ import annotations

import io
import sys


def install_whole_line_stdout() -> None:
    out = sys.stdout
    if out is None or isinstance(getattr(out, "buffer", None), io.BufferedWriter):
        return  # buffered already (the default): partial writes are completed
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture): nothing goes to the daemon through it
    raw = io.FileIO(fd, "w", closefd=False)  # fd 1 stays open; sys.__stdout__ keeps working
    stream = io.TextIOWrapper(io.BufferedWriter(raw), encoding=out.encoding, errors=out.errors, write_through=True)
    out.flush()
    sys.stdout = stream
    from dify_plugin.config.logger_format import plugin_logger_handler

    plugin_logger_handler.setStream(stream)  # its log lines share the stream: whole, and in order with the rest
