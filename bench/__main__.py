"""./dev bench [client|sse|batch|all] [args...]: run benchmarks; each prints ratios against a baseline
measured in the same run."""

import importlib
import sys

BENCHES = {
    "client": "bench.bench_client",
    "sse": "bench.bench_sse",
    "batch": "bench.bench_batch",
    "jobs": "bench.bench_jobs",
    "pacing": "bench.bench_pacing",
}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    names = list(BENCHES) if which == "all" else [which]
    for name in names:
        if name not in BENCHES:
            sys.exit(f"unknown benchmark '{name}': choose from {', '.join(BENCHES)} or all")
        print(f"== {name} ==", flush=True)
        importlib.import_module(BENCHES[name]).main(sys.argv[2:] if which != "all" else [])
        print()


if __name__ == "__main__":
    main()
