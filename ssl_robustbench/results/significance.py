"""Paired comparisons of two models on the same images (same board: same data, conditions and head protocol).

McNemar's exact test (McNemar 1947; the exact binomial form of Edwards 1948) on the discordant images: ``b`` images
one model gets right and the other wrong, ``c`` the reverse; under "no difference" b ~ Binomial(b + c, ½). A suite
of many conditions pools its (image, condition) pairs — the conditions its ranking score averages
(``Benchmark.ranked_columns``) — which treats conditions of one image as independent (they are not), so the test
is a screen for a clear difference, not a calibrated p-value. Differences get a 95 % interval for paired
proportions (Wald, with b and c: Agresti & Min 2005 discuss it and alternatives).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ssl_robustbench.results.card import ResultCard

ALPHA = 0.05


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of ``b`` and ``c`` discordant pairs (1 when there are none): twice the
    smaller binomial tail, at most 1 (the exact two-sided test, as ``binomtest`` gives it for p = ½)."""
    if b + c == 0:
        return 1.0
    from scipy.special import bdtr

    return float(min(1.0, 2.0 * bdtr(min(b, c), b + c, 0.5)))


#: per-image correctness of each card's ranked conditions, by evidence sha256, kept from validation so building
#: the boards does not read the evidence again (bounded: large evidence is re-read when needed)
_RANKED: dict[str, list[Any]] = {}
_RANKED_BUDGET = 256 << 20
_ranked_bytes = 0


def remember(card: ResultCard, records: list[Any]) -> None:
    """Keeps ``card``'s ranked conditions (``Benchmark.ranked_columns``) for McNemar's test while the budget
    lasts; only what was read from a validated evidence file is kept."""
    global _ranked_bytes
    from ssl_robustbench.benchmarks import BENCHMARKS

    key = card.evidence["sha256"]
    if key in _RANKED:
        return
    ranked = BENCHMARKS.get(card.suite)().ranked_columns(records)
    size = sum(e.values.nbytes + e.labels.nbytes + e.index.nbytes for e in ranked)
    if _ranked_bytes + size <= _RANKED_BUDGET:
        _RANKED[key] = ranked
        _ranked_bytes += size


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Accuracy of ``a`` minus ``b`` (per-image bools on the same images) with its 95 % paired Wald interval and
    McNemar's p."""
    n = len(a)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    diff = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - n * diff * diff, 0.0)) / n
    return {"n": n, "a": float(a.mean()), "b": float(b.mean()), "difference": diff,
            "ci95_low": diff - 1.959964 * se, "ci95_high": diff + 1.959964 * se, "only_a": only_a,
            "only_b": only_b, "p_value": mcnemar_p(only_a, only_b)}


def aligned(first: list[Any], second: list[Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per condition both models have: (column, correct of first, correct of second) on the images both have,
    matched by position."""
    other = {e.column: e for e in second}
    out = []
    for e in first:
        f = other.get(e.column)
        if f is None:
            continue
        common, i, j = np.intersect1d(e.index, f.index, return_indices=True)
        same_labels = e.labels[i] == f.labels[j]
        out.append((e.column, e.correct()[i][same_labels], f.correct()[j][same_labels]))
    return out


def discordant(first: list[Any], second: list[Any]) -> tuple[int, int]:
    """(b, c) pooled over the aligned conditions of two evidence lists."""
    b = c = 0
    for _, x, y in aligned(first, second):
        b += int((x & ~y).sum())
        c += int((~x & y).sum())
    return b, c


@dataclasses.dataclass
class PairCache(contextlib.AbstractContextManager):
    """Discordant counts of card pairs, kept by the two evidence sha256s in the user's cache (never in the store,
    whose files a submitter writes), so a rebuild reads the evidence only of pairs it has not compared before."""

    store: Path
    pairs: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    changed: bool = False

    @staticmethod
    def path() -> Path:
        from ssl_robustbench.zoo.download import cache_root

        return cache_root() / "store" / "pairs.json"

    def __enter__(self) -> PairCache:
        path = self.path()
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self.pairs = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 2}
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.changed:
            from ssl_robustbench.fileio import atomic_write_text

            with contextlib.suppress(OSError):
                atomic_write_text(self.path(), json.dumps(self.pairs))

    def _ranked(self, card: ResultCard) -> list[Any]:
        from ssl_robustbench.benchmarks import BENCHMARKS
        from ssl_robustbench.results.evidence import read_evidence

        kept = _RANKED.get(card.evidence["sha256"])
        if kept is not None:
            return kept
        records, data = read_evidence(self.store / "evidence" / f"{Path(card.filename).stem}.parquet")
        if hashlib.sha256(data).hexdigest() != card.evidence["sha256"]:
            raise ValueError("the evidence changed since the card was validated")
        return BENCHMARKS.get(card.suite)().ranked_columns(records)

    def mcnemar(self, a: ResultCard, b: ResultCard) -> float | None:
        """McNemar's p between two cards of one board (None when their evidence cannot be read)."""
        key = f"{a.evidence['sha256']}:{b.evidence['sha256']}"
        if key not in self.pairs:
            try:
                self.pairs[key] = list(discordant(self._ranked(a), self._ranked(b)))
            except Exception:  # noqa: BLE001 - an unreadable evidence file leaves the pair untested
                return None
            self.changed = True
        return mcnemar_p(*self.pairs[key])
