"""ImageNet-C metrics (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019): mean corruption accuracy, CE / mCE and relative mCE (Eq. 2), and the unnormalized mean
error of the 2023 SSL robustness study.

    CE_c        = Σ_s E_{s,c} / Σ_s E^base_{s,c}
    relative CE = Σ_s (E_{s,c} − E_clean) / Σ_s (E^base_{s,c} − E^base_clean)

mCE and relative mCE average over the 15 benchmark corruptions. Two normalizers: Hendrycks' published AlexNet
errors (``hendrycks``; per corruption, averaged over severities, which is all Σ_s needs) or a baseline row of an
accuracy table (RobustBench re-measured AlexNet on its 5,000-image subset). Every result says which was used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS, SEVERITIES

CORRUPTIONS = tuple(BENCHMARK_CORRUPTIONS)

#: AlexNet's top-1 error per corruption, averaged over the 5 severities (Hendrycks & Dietterich 2019).
HENDRYCKS_ALEXNET_ERR = dict(zip(CORRUPTIONS, (
    0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572, 0.819324, 0.564592,
    0.853204, 0.646056, 0.717840, 0.606500), strict=True))

Accuracies = Mapping[tuple[str, int], float]


def read_accuracy_table(path: Path) -> pd.DataFrame:
    """Reads an accuracy table: RobustBench's ``unaggregated_results.csv`` (two header rows, corruption then
    severity; one model per line; fractions) or our long results table (``condition`` ``c:<name>``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"accuracy table not found: {path}")
    try:
        wide = pd.read_csv(path, header=[0, 1], index_col=0)
    except (ValueError, pd.errors.ParserError) as err:
        raise UserError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    if "condition" in wide.columns.get_level_values(0) or "model_id" in wide.columns.get_level_values(0):
        wide = _long_to_wide(pd.read_csv(path), path)
    try:
        wide.columns = pd.MultiIndex.from_tuples([(str(c), int(s)) for c, s in wide.columns])
    except ValueError:
        raise UserError(f"{path}: the second header row must hold severities 1-5") from None
    missing = [(c, s) for c in CORRUPTIONS for s in SEVERITIES if (c, s) not in wide.columns]
    if missing:
        raise UserError(f"{path}: no column for {missing[0][0]} severity {missing[0][1]}")
    wide = wide.apply(pd.to_numeric, errors="coerce")  # text becomes a gap, reported below
    if wide.isna().any().any() or ((wide < 0) | (wide > 1)).any().any():
        raise UserError(f"{path}: accuracies must be fractions in [0, 1] with no gaps")
    return wide


def _long_to_wide(long: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Our long results table → one row per model, a column per (corruption, severity) of top-1 values."""
    missing = sorted({"model_id", "condition", "severity", "metric", "value"} - set(long.columns))
    if missing:
        raise UserError(f"{path}: a results table needs the columns model_id, condition, severity, metric and "
                        f"value; {', '.join(missing)} missing")
    long = long[long["condition"].astype(str).str.startswith("c:") & (long["metric"].astype(str) == "top1")]
    if long.empty:
        raise UserError(f"{path}: no ImageNet-C rows (condition c:<corruption>, metric top1)")
    values = pd.to_numeric(long["value"], errors="coerce")
    severity = pd.to_numeric(long["severity"], errors="coerce")
    if values.isna().any() or severity.isna().any():
        raise UserError(f"{path}: the value and severity columns of the c: rows must hold numbers")
    long = long.assign(corruption=long["condition"].astype(str).str.removeprefix("c:"), value=values,
                       severity=severity.astype(int))
    return long.pivot_table(index="model_id", columns=["corruption", "severity"], values="value")


def corruption_metrics(acc: Accuracies, *, baseline: str | Accuracies = "hendrycks", clean: float | None = None,
                       baseline_clean: float | None = None) -> dict[str, float]:
    """Aggregates one model's accuracies (fractions) per (corruption, severity) over the 15 corruptions.

    Args:
        acc: accuracy per (corruption, severity).
        baseline: ``"hendrycks"`` or a baseline model's accuracies per (corruption, severity).
        clean: the model's clean accuracy (needed for relative mCE).
        baseline_clean: the baseline's clean accuracy (needed for relative mCE).

    Returns:
        ``mean_acc``, ``mean_err`` (unnormalized), ``mce`` and, where both clean accuracies are known,
        ``relative_mce`` and ``clean_acc``; plus ``ce:<corruption>`` for each corruption. Fractions (×100 for %).
    """
    out: dict[str, float] = {}
    ces, rel = [], []
    errs = [1 - acc[c, s] for c in CORRUPTIONS for s in SEVERITIES]
    for c in CORRUPTIONS:
        err = sum(1 - acc[c, s] for s in SEVERITIES) / len(SEVERITIES)
        if isinstance(baseline, str):
            base = HENDRYCKS_ALEXNET_ERR[c]
        else:
            base = sum(1 - baseline[c, s] for s in SEVERITIES) / len(SEVERITIES)
        out[f"ce:{c}"] = err / base
        ces.append(err / base)
        if clean is not None and baseline_clean is not None:
            denominator = base - (1 - baseline_clean)
            rel.append((err - (1 - clean)) / denominator if denominator else math.nan)
    out["mean_acc"] = 1 - sum(errs) / len(errs)
    out["mean_err"] = sum(errs) / len(errs)
    out["mce"] = sum(ces) / len(ces)
    if rel:
        out["relative_mce"] = sum(rel) / len(rel)
        out["clean_acc"] = clean
    return out


def metrics_table(wide: pd.DataFrame, *, baseline: str = "hendrycks",
                  clean: Mapping[str, float] | None = None) -> pd.DataFrame:
    """``corruption_metrics`` for every model (row) of an accuracy table; ``baseline`` is ``hendrycks`` or a row
    name; ``clean`` maps model names (``AlexNet`` for Hendrycks' normalizer) to clean accuracies, for relative
    mCE. The ``normalizer`` column names the baseline used."""
    clean = dict(clean or {})
    if baseline != "hendrycks" and baseline not in wide.index:
        raise UserError(f"baseline row {baseline!r} is not in the table (rows: {', '.join(map(str, wide.index))})")
    base: str | dict = "hendrycks"
    base_clean = clean.get("AlexNet" if baseline == "hendrycks" else baseline)
    if baseline != "hendrycks":
        base = {k: float(v) for k, v in wide.loc[baseline].items()}
    lines = []
    for model, row in wide.iterrows():
        values = corruption_metrics({k: float(v) for k, v in row.items()}, baseline=base, clean=clean.get(model),
                                    baseline_clean=base_clean)
        lines.append({"model": model, "normalizer": "AlexNet (Hendrycks 2019)" if base == "hendrycks"
                      else f"{baseline} (table row)", **values})
    return pd.DataFrame(lines)
