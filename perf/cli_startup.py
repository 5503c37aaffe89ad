"""How long the CLI takes to answer before doing any work: ``robustbench --help``, ``eval --help``, ``zoo list``,
``zoo show`` and ``leaderboard show``, each in a fresh process, against a bare ``python -c pass`` and ``import torch`` measured the
same way (median of N runs). Usage:

    python perf/cli_startup.py [--runs 5] [--store results]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", default="results")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "ssl_robustbench"]
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    torch = median_seconds([sys.executable, "-c", "import torch"], args.runs)
    print(f"python -c pass            {bare:6.2f} s")
    print(f"python -c 'import torch'  {torch:6.2f} s")
    for label, extra in (("--help", ["--help"]), ("eval --help", ["eval", "--help"]), ("zoo list", ["zoo", "list"]),
                         ("zoo show dinov2-vits14", ["zoo", "show", "dinov2-vits14"]),
                         ("leaderboard show", ["leaderboard", "show", "--store", args.store])):
        seconds = median_seconds(cli + extra, args.runs)
        print(f"robustbench {label:<22} {seconds:6.2f} s   {seconds / torch:5.2f}x of importing torch")


if __name__ == "__main__":
    main()
