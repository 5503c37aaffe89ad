"""The HTML leaderboard in real headless Chromium: the linked sort runs and injected markup stays inert."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ssl_robustbench.results.store import build_leaderboard

from cardfactory import INJECT, make_card, write_store

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")


def dump_dom(url: str, profile) -> str:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--virtual-time-budget=3000", "--dump-dom", url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_sort_link_and_injected_markup_in_chromium(tmp_path):
    cards = [make_card("model-a", values=((("clean", 0), 0.9),)),
             make_card("model-b", values=((("clean", 0), 0.2),), method=INJECT),
             make_card("model-c", values=((("clean", 0), 0.5),))]
    store = write_store(tmp_path / "store", cards)
    build_leaderboard(store)
    page = (store / "leaderboard.html").as_uri()
    default = dump_dom(page, tmp_path / "p1")
    ordered = dump_dom(page + "#sort=clean:8:asc", tmp_path / "p2")
    models = lambda dom: re.findall(r"<td>(model-[abc])</td>", dom)  # noqa: E731
    assert models(default) == ["model-a", "model-c", "model-b"]  # built best first
    assert models(ordered) == ["model-b", "model-c", "model-a"]  # the script sorted ascending by mean_top1
    assert 'data-dir="asc"' in ordered
    for dom in (default, ordered):
        assert "<title>ssl-robustbench leaderboard</title>" in dom  # the onerror handler never ran
        assert '<img src="x"' not in dom and "&lt;img src=x onerror=" in dom


HOSTILE = ['<script>document.title="pwned"</script>', '"><svg onload="document.title=\'pwned\'">',
           "</td></tr></table><img src=x onerror=\"document.title='pwned'\">", "javascript:document.title='pwned'",
           "<iframe srcdoc='<script>parent.document.title=1</script>'>"]


def test_hostile_text_in_every_card_field_stays_inert_in_chromium(tmp_path):
    cards = []
    for i, payload in enumerate(HOSTILE):
        card = make_card(f"hostile-{i}", method=payload, suite="pd",
                         values=(((f"pd:{payload}", 0), 0.3), (("clean", 0), 0.5)))
        cards.append(card)
    store = write_store(tmp_path / "store", cards)
    build_leaderboard(store)
    dom = dump_dom((store / "leaderboard.html").as_uri(), tmp_path / "p")
    assert "<title>ssl-robustbench leaderboard</title>" in dom  # no injected script ran
    assert "<svg" not in dom and "<iframe" not in dom and '<img src="x"' not in dom
    assert dom.count("<script>") == 1
