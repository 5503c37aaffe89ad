"""Checkpoint download against a server on 127.0.0.1: sha256 check, atomic write, cache reuse."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo.download import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture()
def server(tmp_path):
    (tmp_path / "w.pth").write_bytes(PAYLOAD)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args):
            hits.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_caches(server, tmp_path):
    url, hits = server
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    dest = tmp_path / "cache" / "m" / "w.pth"
    assert download(f"{url}/w.pth", dest, sha256=digest, quiet=True).read_bytes() == PAYLOAD
    n = len(hits)
    download(f"{url}/w.pth", dest, sha256=digest[:8], quiet=True)  # cached, prefix accepted
    assert len(hits) == n


def test_wrong_sha256_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(UserError, match="sha256 mismatch"):
        download(f"{url}/w.pth", dest, sha256="0" * 64, quiet=True)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_tampered_cache_file_is_refused(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w.pth"
    dest.write_bytes(b"tampered")
    with pytest.raises(UserError, match="cached file"):
        download(f"{url}/w.pth", dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(), quiet=True)


def test_unreachable_url_is_a_user_error(server, tmp_path):
    url, _ = server
    with pytest.raises(UserError, match="cannot download"):
        download(f"{url}/missing.pth", Path(tmp_path / "x.pth"), sha256=None, quiet=True)
