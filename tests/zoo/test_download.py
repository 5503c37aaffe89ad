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


@pytest.fixture()
def lying_server():
    """Serves ``/short`` (Content-Length 1000, 10 bytes sent), ``/page`` (an HTML page) and ``/junk`` (bytes that
    are not a checkpoint), for downloads without a pinned sha256."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, kind, length = {"/short": (b"x" * 10, "application/octet-stream", 1000),
                                  "/page": (b"<html>sign in</html>", "text/html; charset=utf-8", None),
                                  "/junk": (b"not a checkpoint", "application/octet-stream", None)}[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length or len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path, message", [("/short", "10 of 1000 bytes|IncompleteRead"), ("/page", "HTML page")])
def test_unpinned_download_that_is_short_or_a_page_is_not_cached(lying_server, tmp_path, path, message):
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(UserError, match=message):
        download(f"{lying_server}{path}", dest, sha256=None, quiet=True)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial file either


def test_unreadable_unpinned_download_is_removed_from_the_cache(lying_server, tmp_path):
    from ssl_robustbench.zoo import checkpoint_path, read_fetched
    from ssl_robustbench.zoo.card import Source, ZooCard

    source = Source(url=f"{lying_server}/junk")
    card = ZooCard(id="m", arch="tiny_resnet", method="unknown", paper="-", license="-", source=source)
    path = checkpoint_path(card, cache_dir=tmp_path, quiet=True)
    assert path.read_bytes() == b"not a checkpoint"
    with pytest.raises(UserError, match="removed the downloaded file from the cache"):
        read_fetched(path, source)
    assert not path.exists()  # the next run downloads it again instead of failing on it forever
