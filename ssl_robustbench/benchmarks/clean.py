"""The clean suite: top-1 of the linear probe on the unmodified evaluation split (the reference every shift is
compared with)."""

from __future__ import annotations

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Benchmark, Condition


@BENCHMARKS.register("clean")
class CleanBenchmark(Benchmark):
    """One condition, ``clean``."""

    name = "clean"
    clean_reference = None
    covers_eval_set = True

    def conditions(self, cfg) -> list[Condition]:
        return [CLEAN]
