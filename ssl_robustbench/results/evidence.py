"""Per-image evidence behind a result card: for every condition of a suite, each image's label and what the scored
model did with it — the predicted class (``pred`` columns) or, for attacks, whether the image stayed correctly
classified (``flag`` columns, 1/0). Rows and aggregates of a card are recomputed from it at validation, and
``robustbench verify`` re-runs a sample of it; neighbours on a board are compared on it (McNemar).

File: one Parquet table per card (zstd), one row per image slot, columns ``index`` (the image's position in the
condition's dataset, in the order of the data identity), ``label`` and one int16 column per condition named
``<condition>@<severity>``; a condition whose images or labels differ from the shared ones has its own
``index@…`` / ``label@…`` columns. The schema metadata (``ssl_robustbench``) lists each condition's key, severity,
kind and typed parameters. 50,000 images × 84 conditions take ≈ 6 MB.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ssl_robustbench.errors import UserError

KINDS = ("pred", "flag")
MAX_EVIDENCE_BYTES = 64 << 20
#: bounds read from the Parquet footer before decompression: ImageNet-Sketch (50,889 images) × ImageNet-C with its
#: extra corruptions (95 conditions, index and label columns of their own) fit with room to spare
MAX_EVIDENCE_ROWS = 1 << 21
MAX_EVIDENCE_COLUMNS = 1024
MAX_EVIDENCE_CELLS = 1 << 24
MAX_EVIDENCE_UNCOMPRESSED = 256 << 20
_META_KEY = b"ssl_robustbench"


class EvidenceError(UserError):
    """An evidence file that is missing, too large, unreadable or inconsistent (the message names it)."""


@dataclasses.dataclass(frozen=True)
class ImageEvidence:
    """One condition's per-image record: ``values`` (predicted class, or 1/0 flag), ``labels`` and ``index``
    (positions in the condition's dataset), all 1-D of one length."""

    key: str
    severity: int
    kind: str
    values: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def column(self) -> str:
        return column_name(self.key, self.severity)

    def correct(self) -> np.ndarray:
        """Per-image correctness (bool): prediction equal to the label, or the flag set."""
        return self.values == self.labels if self.kind == "pred" else self.values.astype(bool)

    def top1(self) -> float:
        return float(self.correct().mean()) if len(self.values) else float("nan")


def column_name(key: str, severity: int) -> str:
    return f"{key}@{severity}"


def image_evidence(key: str, severity: int, kind: str, values: Any, labels: Any, index: Any = None,
                   params: Mapping[str, Any] | None = None) -> ImageEvidence:
    """An ``ImageEvidence`` from tensors or arrays (``index`` defaults to 0 … n−1)."""
    values, labels = _int_array(values), _int_array(labels)
    index = np.arange(len(values), dtype=np.int64) if index is None else _int_array(index)
    return ImageEvidence(key, int(severity), kind, values, labels, index, dict(params or {}))


def _int_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(np.int64).reshape(-1)


def to_bytes(records: list[ImageEvidence]) -> bytes:
    """The Parquet bytes of a suite's evidence (conditions in the given order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not records:
        raise EvidenceError("no evidence to write")
    first = records[0]
    length = max(len(r.values) for r in records)
    columns: dict[str, np.ndarray] = {"index": _padded(first.index, length, np.int32),
                                      "label": _padded(first.labels, length, np.int16)}
    meta = []
    for r in records:
        if r.kind not in KINDS:
            raise EvidenceError(f"evidence kind must be one of {KINDS}, not {r.kind!r}")
        own = {}
        if not np.array_equal(r.index, first.index):
            own["index"] = f"index@{r.column}"
            columns[own["index"]] = _padded(r.index, length, np.int32)
        if not np.array_equal(r.labels, first.labels):
            own["label"] = f"label@{r.column}"
            columns[own["label"]] = _padded(r.labels, length, np.int16)
        columns[r.column] = _padded(r.values, length, np.int16)
        meta.append({"key": r.key, "severity": r.severity, "kind": r.kind, "n": len(r.values),
                     "params": dict(r.params), **own})
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps({"version": 1, "conditions": meta})})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=9)
    return sink.getvalue()


def _padded(values: np.ndarray, length: int, dtype: Any) -> np.ndarray:
    if len(values) and (values.min() < np.iinfo(dtype).min or values.max() > np.iinfo(dtype).max):
        raise EvidenceError(f"evidence values out of the {np.dtype(dtype).name} range")
    out = np.full(length, -1, dtype=dtype)
    out[: len(values)] = values
    return out


def check_extent_metadata(data: bytes, *, where: str, rows: int | None = None) -> Any:
    """Bounds checked from the Parquet footer before anything is decompressed: the row count (``rows``: exactly
    this many; else at most ``MAX_EVIDENCE_ROWS``), at most ``MAX_EVIDENCE_COLUMNS`` integer columns, and the
    declared uncompressed size — so a small file that would expand to gigabytes is refused unread."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        schema = meta.schema.to_arrow_schema()
        uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as err:  # noqa: BLE001 - a footer pyarrow cannot read is not evidence
        raise EvidenceError(f"{where}: not valid evidence ({type(err).__name__}: {str(err)[:100]})") from None
    if rows is not None and meta.num_rows != rows:
        raise EvidenceError(f"{where}: {meta.num_rows:,} rows where the card's image set has {rows:,}")
    if (meta.num_rows > MAX_EVIDENCE_ROWS or meta.num_columns > MAX_EVIDENCE_COLUMNS
            or meta.num_rows * meta.num_columns > MAX_EVIDENCE_CELLS):
        raise EvidenceError(f"{where}: {meta.num_rows:,} rows × {meta.num_columns} columns exceed the limits "
                            f"({MAX_EVIDENCE_ROWS:,} rows, {MAX_EVIDENCE_COLUMNS} columns, "
                            f"{MAX_EVIDENCE_CELLS:,} cells)")
    if uncompressed > MAX_EVIDENCE_UNCOMPRESSED or not all(pa.types.is_integer(t) for t in schema.types):
        raise EvidenceError(f"{where}: declared {uncompressed:,} bytes uncompressed or non-integer columns")
    return parquet


def from_bytes(data: bytes, *, where: str = "evidence", rows: int | None = None) -> list[ImageEvidence]:
    """Parses Parquet evidence bytes (bounds checked first: ``check_extent_metadata``; ``rows``: the row count the
    card's image set gives); any defect is an ``EvidenceError`` naming ``where``."""
    parquet = check_extent_metadata(data, where=where, rows=rows)
    try:
        table = parquet.read(use_threads=False)
        meta = json.loads((table.schema.metadata or {})[_META_KEY])
        conditions = meta["conditions"]
        arrays = {name: table.column(name).to_numpy().astype(np.int64) for name in table.column_names}
        records = []
        for c in conditions:
            n, column = int(c["n"]), column_name(str(c["key"]), int(c["severity"]))
            if not 0 < n <= len(arrays["index"]) or c["kind"] not in KINDS or not isinstance(c["params"], dict):
                raise ValueError(f"condition {column}: bad count, kind or params")
            records.append(ImageEvidence(
                key=str(c["key"]), severity=int(c["severity"]), kind=c["kind"], values=arrays[column][:n],
                labels=arrays[c.get("label", "label")][:n], index=arrays[c.get("index", "index")][:n],
                params=c["params"]))
    except EvidenceError:
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds; all mean "not valid evidence"
        raise EvidenceError(f"{where}: not valid evidence ({type(err).__name__}: {str(err)[:100]})") from None
    for r in records:
        if (r.labels < 0).any() or (r.index < 0).any() or len(np.unique(r.index)) != len(r.index):
            raise EvidenceError(f"{where}: condition {r.column}: negative labels or repeated image positions")
        if r.kind == "flag" and not np.isin(r.values, (0, 1)).all():
            raise EvidenceError(f"{where}: condition {r.column}: flags must be 0 or 1")
    if len({r.column for r in records}) != len(records):
        raise EvidenceError(f"{where}: a condition is listed twice")
    return records


def read_evidence(path: Path, *, where: str | None = None) -> tuple[list[ImageEvidence], bytes]:
    """An evidence file (a regular file, not a link, at most ``MAX_EVIDENCE_BYTES``): its records and bytes."""
    data = read_regular_file(Path(path), limit=MAX_EVIDENCE_BYTES, what="evidence file", error=EvidenceError)
    return from_bytes(data, where=where or Path(path).name), data


def read_regular_file(path: Path, *, limit: int, what: str, error: type[UserError] = UserError) -> bytes:
    """The bytes of ``path``, refusing symlinks, anything but a regular file, and files over ``limit`` bytes —
    without reading past the limit (a link to /dev/zero, a FIFO or a huge file is one error line)."""
    import os
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise error(f"{what} not found: {path.name}") from None
    except OSError as err:
        raise error(f"{what} {path.name}: cannot be read ({err.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{what} {path.name} is a symbolic link; store files must be regular files")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path.name} is not a regular file")
    if st.st_size > limit:
        raise error(f"{what} {path.name} is larger than {limit >> 20} MiB")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise error(f"{what} {path.name}: cannot be read ({err.strerror})") from None
    if len(data) > limit:
        raise error(f"{what} {path.name} is larger than {limit >> 20} MiB")
    return data


def evidence_path(card_path: Path) -> Path:
    """Where a card file's evidence lies: ``<root>/evidence/<card stem>.parquet`` beside ``<root>/cards/``."""
    card_path = Path(card_path)
    return card_path.parent.parent / "evidence" / f"{card_path.stem}.parquet"


def head_path(card_path: Path, sha256: str) -> Path:
    """Where the scored head of a card lies: ``<root>/heads/<sha256>.safetensors``."""
    return Path(card_path).parent.parent / "heads" / f"{sha256}.safetensors"
