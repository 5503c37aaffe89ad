"""The ResultRow schema: every evaluation emits rows of one long table; everything else is a pivot of it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
from pathlib import Path

import pandas as pd

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_text, read_json


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """One measured number.

    ``condition`` names what was measured (``clean``, ``pd:left/black``, ``c:fog``); ``severity`` is 0 where it
    does not apply; ``metric`` is e.g. ``top1`` (a fraction in [0, 1]); ``n`` is the number of images.
    """

    model_id: str
    method: str
    arch: str
    suite: str
    condition: str
    severity: int
    metric: str
    value: float
    n: int
    seed: int
    probe_id: str
    config_hash: str
    version: str
    created_at: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise ValueError(f"result value must be a finite number, got {self.value!r}")
        if self.n < 0 or self.severity < 0:
            raise ValueError("n and severity must be ≥ 0")

    @staticmethod
    def now() -> str:
        return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


COLUMNS = [f.name for f in dataclasses.fields(ResultRow)]
_DTYPES = {f.name: f.type for f in dataclasses.fields(ResultRow)}


def rows_to_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """A DataFrame with exactly ``COLUMNS`` in order."""
    return pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=COLUMNS)


def write_table(rows: list[ResultRow], directory: Path, *, stem: str = "results") -> list[Path]:
    """Writes ``<stem>.csv``, ``<stem>.parquet`` and ``<stem>.json`` (records) atomically; returns the paths."""
    frame = rows_to_frame(rows)
    paths = [directory / f"{stem}.{ext}" for ext in ("csv", "parquet", "json")]
    atomic_write_text(paths[0], frame.to_csv(index=False))
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(paths[1], buf.getvalue())
    atomic_write_text(paths[2], json.dumps([dataclasses.asdict(r) for r in rows], indent=1, allow_nan=False))
    return paths


def read_table(path: Path) -> list[ResultRow]:
    """Reads a results CSV/Parquet/JSON back into rows; a malformed file is a UserError naming the problem."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            records = pd.read_csv(path, dtype={"probe_id": str, "config_hash": str}).to_dict("records")
        elif path.suffix == ".parquet":
            records = pd.read_parquet(path).to_dict("records")
        elif path.suffix == ".json":
            records = read_json(path, what="results file")
        else:
            raise UserError(f"results file {path} must be .csv, .parquet or .json")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UserError(f"cannot read results file {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(records, list):
        raise UserError(f"results file {path} must hold a list of rows")
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or set(rec) != set(COLUMNS):
            got = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
            raise UserError(f"results file {path}, row {i}: columns must be {COLUMNS}, got {got}")
        try:
            rows.append(ResultRow(**{k: _cast(k, v) for k, v in rec.items()}))
        except (TypeError, ValueError) as err:
            raise UserError(f"results file {path}, row {i}: {err}") from None
    return rows


def _cast(key: str, value: object) -> object:
    kind = _DTYPES[key]
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{key} must be an integer, got {value}")
        return int(value)  # type: ignore[arg-type]
    if kind == "float":
        return float(value)  # type: ignore[arg-type]
    return str(value)
