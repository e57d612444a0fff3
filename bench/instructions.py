"""Instructions per engine command, counted by callgrind: exact and independent of machine load.

    python -m bench.instructions [--commands N] [--backends python cython]

For each backend it runs the workload's set-up alone and then the set-up plus
N measured commands under ``valgrind --tool=callgrind``, and prints the
difference divided by N. Wall-clock benchmarks on a shared 2-core machine
swing by ±10%; this does not, so it is the yardstick for optimising the
Python-level backends (the Rust engine's own is ``ext/examples/replay.rs``).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile

from bench import workload

_CHILD = """
import pickle, sys
from core.commands import Command
from core.engine import open_engine
instruments, setup, measured = pickle.load(open(sys.argv[1], "rb"))
setup = [Command(*c) for c in setup]
measured = [Command(*c) for c in measured]  # built in both phases, so only submit() is counted
engine = open_engine(sys.argv[2], instruments)
for c in setup:
    engine.submit(c)
if sys.argv[3] == "run":
    for c in measured:
        engine.submit(c)
"""


def count(path: str, backend: str, phase: str) -> int:
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _CHILD,
         path, backend, phase],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}, check=True,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no total:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=30_000)
    parser.add_argument("--backends", nargs="+", default=["python", "cython"])
    args = parser.parse_args(argv)
    instruments, setup = workload.preamble()
    measured = workload.generate(args.commands)
    with tempfile.NamedTemporaryFile(suffix=".pkl") as file:
        pickle.dump((instruments, [tuple(c) for c in setup], [tuple(c) for c in measured]), file)
        file.flush()
        results = {}
        for backend in args.backends:
            results[backend] = (count(file.name, backend, "run") - count(file.name, backend, "base")) / args.commands
            print(f"{backend:8s} {results[backend]:10,.0f} instructions/command", flush=True)
    if "python" in results:
        for backend, value in results.items():
            if backend != "python":
                print(f"{backend} executes {results['python'] / value:.2f}x fewer instructions than python")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
