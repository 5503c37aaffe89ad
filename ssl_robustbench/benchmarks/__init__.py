"""Benchmark suites by name (``BENCHMARKS``); each yields conditions evaluated by the same streaming loop."""

from ssl_robustbench.benchmarks import adversarial, clean, corruptions, edits, perspective  # noqa: F401  (registers)
from ssl_robustbench.benchmarks.base import BENCHMARKS, Benchmark, Condition

__all__ = ["BENCHMARKS", "Benchmark", "Condition"]
