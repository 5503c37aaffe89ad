"""``leaderboard show`` without rebuilding the boards: the store's board tables, snapshotted by content in the
cache (``$SSL_ROBUSTBENCH_CACHE/store/boards/<key>/``, never in the store), so showing an unchanged store imports
neither torch nor the suites. The key is the sha256 of everything a board depends on: the store's cards, evidence,
heads and verification records, its ``store.toml``, the zoo's cards (look-alike ids) and the package's own source
(a new version or a changed rule never reads an old snapshot). A snapshot that cannot be read is ignored."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

_STORE_PARTS = ("cards", "evidence", "heads", "verifications")


def _files(root: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file()) if root.is_dir() else []


def content_key(store: Path) -> str:
    """sha256 over every input of the store's boards (see the module docstring)."""
    import ssl_robustbench
    from ssl_robustbench.zoo import zoo_dir

    digest = hashlib.sha256(ssl_robustbench.__version__.encode())
    package = Path(ssl_robustbench.__file__).parent
    sources = [(store, p) for part in _STORE_PARTS for p in _files(store / part)]
    sources += [(store, store / "store.toml")] if (store / "store.toml").is_file() else []
    sources += [(zoo_dir(), p) for p in _files(zoo_dir(), "*.yaml")]
    sources += [(package, p) for p in _files(package, "*.py")]
    for root, path in sources:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _folder(key: str) -> Path:
    from ssl_robustbench.zoo.download import cache_root

    return cache_root() / "store" / "boards" / key


def load(key: str) -> tuple[dict[str, pd.DataFrame], list[str]] | None:
    """The snapshot under ``key`` (``content_key``): the boards and skipped-card lines, or None (none yet, or
    unreadable)."""
    import pandas as pd

    folder = _folder(key)
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        tables = {name: pd.read_parquet(folder / f"{i}.parquet") for i, name in enumerate(index["boards"])}
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return None
    return tables, list(index["errors"])


def save(key: str, tables: dict[str, pd.DataFrame], errors: list[str]) -> None:
    """Snapshots the boards under ``key`` (silently skipped where a table cannot be written as Parquet)."""
    import io

    folder = _folder(key)
    try:
        for i, frame in enumerate(tables.values()):
            buffer = io.BytesIO()
            frame.to_parquet(buffer)
            atomic_write_bytes(folder / f"{i}.parquet", buffer.getvalue())
        atomic_write_text(folder / "index.json", json.dumps({"boards": list(tables), "errors": list(errors)}))
    except (OSError, ValueError, TypeError, ImportError):  # pyarrow's own errors are ValueError / TypeError
        return
