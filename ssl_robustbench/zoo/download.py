"""Checkpoint download into the cache: streamed, sha256-checked, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_open, sha256_file
from ssl_robustbench.progress import console


def cache_root() -> Path:
    """``$SSL_ROBUSTBENCH_CACHE``, else ``~/.cache/ssl_robustbench``."""
    env = os.environ.get("SSL_ROBUSTBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ssl_robustbench"


def check_sha256(actual: str, expected: str | None, *, what: str) -> None:
    """``expected`` may be a full digest or a prefix (≥ 8 hex digits); a mismatch is a UserError."""
    if expected is not None and not actual.startswith(expected.lower()):
        raise UserError(f"sha256 mismatch for {what}: expected {expected}, got {actual}")


def download(url: str, dest: Path, *, sha256: str | None, timeout: float = 60.0, quiet: bool = False) -> Path:
    """Downloads ``url`` to ``dest`` unless a file with the right hash is already there.

    The bytes are hashed while streaming into a temporary file beside ``dest``, which is renamed into place only
    when the hash matches, so an interrupted or tampered download never leaves a file under the final name.

    Args:
        url: http(s) address.
        dest: final path in the cache.
        sha256: expected digest (or prefix); ``None`` accepts any content (its digest is still reported).
        timeout: socket timeout in seconds.
        quiet: no progress bar.
    """
    dest = Path(dest)
    if dest.is_file():
        check_sha256(sha256_file(dest), sha256, what=f"cached file {dest} (delete it to download again)")
        return dest
    if sha256 is None and not quiet:
        console.print(f"[yellow]warning:[/] no sha256 pinned for {url}; its digest is recorded in the run's model.json")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_open(dest) as out:
            if resp.headers.get_content_type() == "text/html":
                raise UserError(f"cannot download {url}: the server answered with an HTML page, not a file "
                                "(a login or error page?)")
            total = int(resp.headers.get("Content-Length") or 0) or None
            received = 0
            with Progress(*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          disable=quiet, transient=True) as bar:
                task = bar.add_task(f"download {dest.name}", total=total)
                while block := resp.read(1 << 20):
                    digest.update(block)
                    out.write(block)
                    received += len(block)
                    bar.advance(task, len(block))
            if total is not None and received != total:
                raise UserError(f"cannot download {url}: got {received} of {total} bytes (Content-Length); "
                                "nothing was kept, run again to retry")
            check_sha256(digest.hexdigest(), sha256, what=url)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise UserError(f"cannot download {url}: {err}") from None
    return dest
