"""./dev bench [ratios|client|sse|batch|jobs|pacing|profile|all] [args...]: run benchmarks; each prints ratios
against a baseline measured in the same run. No argument: issue 24's four ratios with their targets
(bench/ratios.py); `all`: every detailed benchmark, one after the other (several minutes)."""

import importlib
import sys

BENCHES = {
    "ratios": "bench.ratios",
    "client": "bench.bench_client",
    "sse": "bench.bench_sse",
    "batch": "bench.bench_batch",
    "jobs": "bench.bench_jobs",
    "pacing": "bench.bench_pacing",
    "profile": "bench.profile",
}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "ratios"
    rest = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == which else sys.argv[1:]
    names = [name for name in BENCHES if name not in ("ratios", "profile")] if which == "all" else [which]
    for name in names:
        if name not in BENCHES:
            sys.exit(f"unknown benchmark '{name}': choose from {', '.join(BENCHES)} or all")
        print(f"== {name} ==", flush=True)
        importlib.import_module(BENCHES[name]).main(rest if which != "all" else [])
        print()


if __name__ == "__main__":
    main()
