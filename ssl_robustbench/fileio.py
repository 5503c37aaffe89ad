"""Atomic file writes, checked reads and hashing: nothing half-written is ever left under a final name, and a file
that cannot be read or parsed is a UserError naming it (never a traceback)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Opens a temporary file beside ``path`` for binary writing and renames it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON (NaN refused) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, *, length: int = 16) -> str:
    """Short sha256 of the canonical JSON of ``obj`` (sorted keys), used for cache and config keys."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def read_text(path: Path, *, what: str = "file") -> str:
    """A UTF-8 text file; a missing, unreadable or non-UTF-8 file is a UserError naming ``what`` and the path."""
    from ssl_robustbench.errors import UserError

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {err.start}: {err.reason})") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror or err}") from None


def read_json(path: Path, *, what: str = "file") -> Any:
    """``read_text`` parsed as JSON (NaN / Infinity refused)."""
    from ssl_robustbench.errors import UserError

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    text = read_text(path, what=what)
    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as err:
        raise UserError(f"{what} {path} is not valid JSON: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise UserError(f"{what} {path} is nested too deeply to be one") from None


def strict_yaml(text: str, *, where: str) -> Any:
    """YAML parsed with the safe loader, refusing what a config never needs and an attacker would use: a key
    given twice in one mapping (the last would silently win), anchors and aliases (a "billion laughs" bomb) and
    explicit tags (``!!python/…``, ``!!binary``)."""
    import yaml

    from ssl_robustbench.errors import UserError

    class Strict(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UserError(f"{where}: YAML anchors and aliases (&, *) are not allowed")
            implicit = getattr(event, "implicit", True)
            implicit = implicit[0] if isinstance(implicit, tuple) else implicit
            if getattr(event, "tag", None) and not implicit and event.tag != "!":
                raise UserError(f"{where}: YAML tags ({event.tag}) are not allowed")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=True) for k, _ in node.value]
            repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
            if repeated:
                raise UserError(f"{where}: key {repeated[0]!r} is given twice in one mapping")
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=Strict)  # noqa: S506 - Strict is a SafeLoader
    except yaml.YAMLError as err:
        raise UserError(f"{where} is not valid YAML: {str(err).splitlines()[0]}") from None


def read_yaml(path: Path, *, what: str = "file") -> Any:
    """``read_text`` parsed by ``strict_yaml``."""
    return strict_yaml(read_text(path, what=what), where=f"{what} {path}")


def require_free_space(path: Path, needed: int, *, what: str) -> None:
    """Raises a UserError when the file system of ``path`` (or its nearest existing parent) has less than
    ``needed`` bytes free — before a large write starts, so a full disk is one line, not a failure half-way (the
    feature store is preallocated sparse: without this, ENOSPC would come at a later write)."""
    import shutil

    from ssl_robustbench.errors import UserError

    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise UserError(f"{what} needs {needed / 2**20:,.1f} MiB but {probe} has {free / 2**20:,.1f} MiB free; "
                        "free space or choose another --cache-dir / --out")
