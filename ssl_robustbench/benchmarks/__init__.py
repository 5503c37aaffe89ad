"""Benchmark suites by name (``BENCHMARKS``); each yields conditions evaluated by the same streaming loop."""

from ssl_robustbench.benchmarks import (  # noqa: F401  (importing a suite's file registers it)
    adversarial,
    clean,
    corruptions,
    edits,
    imagenet_3dcc,
    imagenet_a,
    imagenet_r,
    imagenet_sketch,
    imagenet_v2,
    perspective,
)
from ssl_robustbench.benchmarks.base import BENCHMARKS, Benchmark, Condition

__all__ = ["BENCHMARKS", "Benchmark", "Condition"]
