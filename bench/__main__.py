"""Run every benchmark (or those named: ``python -m bench web feeds``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    wanted = [f"bench_{a}" for a in argv] or names
    failed = 0
    for name in wanted:
        if name not in names:
            print(f"no benchmark {name[6:]!r}; have: {', '.join(n[6:] for n in names)}", file=sys.stderr)
            return 2
        print(f"\n=== {name[6:]} ===", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # one broken benchmark does not hide the others' figures
            failed += 1
            print(f"{name[6:]}: FAILED: {exc.__class__.__name__}: {exc}", flush=True)
        print(f"({name[6:]} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
