"""The one timing rule of the perf scripts: wall times of ``repeats`` calls, CUDA synchronized around each, in a
process set up as the ``robustbench`` command sets up its own (glibc's malloc thresholds, ``ssl_robustbench.allocator``;
``SSL_ROBUSTBENCH_DEFAULT_MALLOC=1`` times glibc's defaults instead)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from ssl_robustbench.allocator import tune_malloc

tune_malloc()


def times_of(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def best_of(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``."""
    return min(times_of(fn, device, repeats))


def interleaved(measures: Sequence[Callable[[], float]], rounds: int) -> tuple[list[float], list[tuple[float, ...]]]:
    """Calls each of ``measures`` (each returning seconds) once per round, in turn, for ``rounds`` rounds, so that a
    slow spell of the machine hits all of them alike: the fastest result of each measure, and every round's."""
    per_round = [tuple(measure() for measure in measures) for _ in range(rounds)]
    return [min(column) for column in zip(*per_round, strict=True)], per_round
