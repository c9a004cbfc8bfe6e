"""Graceful shutdown of the job workers: on SIGTERM, or when the daemon closes our stdin, stop claiming,
let items in flight finish within a grace period, release the rest at once (no lease left to expire),
and exit. Installed by main.py with the process's engine; under the Dify runtime gevent is there (the SDK
patches with it)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from jobs.queue import DEFAULT_GRACE, JobEngine

logger = logging.getLogger("holysheep.jobs")
_started = threading.Event()


def shutdown_and_exit(engine: JobEngine, code: int = 0, grace: float = DEFAULT_GRACE) -> None:
    if _started.is_set():
        return
    _started.set()
    try:
        released = engine.shutdown(grace)
        if released:
            logger.info("released %d job items on shutdown", released)
        engine.gateway.backends.flush_metrics()  # os._exit skips atexit: the clients' figures go to Redis first
    finally:
        try:
            sys.stdout.flush()
        finally:
            os._exit(code)


def install_shutdown(engine: JobEngine) -> None:
    try:
        import gevent
        from gevent import monkey
    except ImportError:  # plain Python: a signal handler that starts the shutdown on a thread
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=shutdown_and_exit, args=(engine,), daemon=True).start())
        return
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(shutdown_and_exit, engine))
    if os.environ.get("INSTALL_METHOD", "local").lower() == "local":
        poll = monkey.get_original("select", "poll")

        def watch_stdin() -> None:
            watcher = poll()
            watcher.register(sys.stdin.fileno(), 0)  # POLLHUP and POLLERR are always reported
            while True:
                events = watcher.poll(0)
                if any(flags & 0x10 for _, flags in events):  # POLLHUP: the daemon closed the pipe
                    shutdown_and_exit(engine, 0)
                    return
                time.sleep(1.0)

        gevent.spawn(watch_stdin)
