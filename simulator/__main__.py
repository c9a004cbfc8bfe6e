"""`python -m simulator`: serve until SIGTERM/SIGINT after printing one JSON line with the address."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from simulator.server import DEFAULT_API_KEY, SimulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--rpm-limit", type=float, default=None)
    parser.add_argument("--tpm-limit", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=None)
    parser.add_argument("--fault-mix", default=None, help="comma separated, e.g. 429,500,503,reset_before")
    parser.add_argument("--fault", default=None, help='global fault spec, e.g. "latency=50, 429x1"')
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mix = [m.strip() for m in args.fault_mix.split(",") if m.strip()] if args.fault_mix else None
    server = SimulatorServer(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        rpm_limit=args.rpm_limit,
        tpm_limit=args.tpm_limit,
        fault_rate=args.fault_rate,
        fault_mix=mix,
        fault=args.fault,
        seed=args.seed,
    ).start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # shutdown() must not run inside the handler: it waits for the serving thread

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(json.dumps({"port": server.port, "base_url": server.base_url, "api_key": args.api_key}), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
