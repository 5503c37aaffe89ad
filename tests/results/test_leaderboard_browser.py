"""The HTML leaderboard in real headless Chromium: the linked sort runs and injected markup stays inert."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ssl_robustbench.results.store import build_leaderboard

from cardfactory import INJECT, board_of, make_card, write_store

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
    ordered = dump_dom(page + f"#sort={board_of(cards[0])}:2:asc", tmp_path / "p2")  # board id, mean_top1 column
    board = lambda dom: dom[dom.index('<table class="board'):].split("</table>")[0]  # noqa: E731
    models = lambda dom: re.findall(r"<td>(model-[abc])</td>", board(dom))  # noqa: E731
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


def _overflow_probe(page_uri: str, width: int) -> str:
    """A page that frames ``page_uri`` at ``width`` CSS pixels and writes whether its body overflows."""
    return f"""<!DOCTYPE html><html><body>
<iframe id="f" src="{page_uri}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const doc = document.getElementById('f').contentDocument.documentElement;
  const out = document.createElement('pre');
  out.id = 'result';
  out.textContent = 'scroll=' + doc.scrollWidth + ' client=' + doc.clientWidth;
  document.body.appendChild(out);
}});
</script></body></html>"""


@pytest.mark.parametrize("width", [1280, 390])
def test_page_has_no_horizontal_overflow_at_desktop_and_phone_width(tmp_path, width):
    conditions = [f"pd:{v}/{b}" for b in ("black", "padded") for v in ("left", "right", "top", "bottom")]
    cards = [make_card(f"embedded-simclr-with-a-long-name-{i}-tinyresnet", suite="pd",
                       values=tuple(((c, 0), 0.1 * i + 0.01 * j) for j, c in enumerate(conditions))
                       + ((("clean", 0), 0.5),))
             for i in range(1, 4)] + [make_card(f"embedded-model-{i}", values=((("clean", 0), 0.5 + i / 10),))
                                      for i in range(3)]
    store = write_store(tmp_path / "store", cards)
    build_leaderboard(store)
    html = (store / "leaderboard.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<div class="scroll">' in html and "<dl class=\"legend\">" in html and "<dt>drop</dt>" in html
    probe = tmp_path / "probe.html"
    probe.write_text(_overflow_probe((store / "leaderboard.html").as_uri(), width))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
            "--dump-dom", probe.as_uri()]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    found = re.search(r"scroll=(\d+) client=(\d+)", proc.stdout)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    scroll, client = map(int, found.groups())
    assert width - 20 <= client <= width  # the frame's width less a vertical scrollbar
    assert scroll <= client, f"the page body overflows at {width} px: {scroll} > {client}"
    shot = tmp_path / f"leaderboard-{width}.png"  # a screenshot at that width, for a human look
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile2'}", f"--window-size={width},1200", f"--screenshot={shot}",
                    (store / "leaderboard.html").as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 1000


_VISIBILITY_PROBE = """<!DOCTYPE html><html><body>
<iframe id="f" src="{page}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const win = document.getElementById('f').contentWindow, doc = win.document;
  const lines = [];
  doc.querySelectorAll('table.board').forEach(t => {{
    const box = t.parentElement.getBoundingClientRect();
    const cells = Array.from(t.tHead.rows[0].cells).slice(0, 3).map(c => c.textContent + '@' +
      Math.round(c.getBoundingClientRect().right - box.left));
    lines.push(t.id + ' view=' + Math.round(box.width) + ' table=' + t.scrollWidth + ' ' + cells.join(' '));
  }});
  const out = document.createElement('pre');
  out.id = 'result';
  out.textContent = lines.join('\\n');
  document.body.appendChild(out);
}});
</script></body></html>"""


@pytest.mark.parametrize("width", [1280, 390])
def test_shipped_boards_keep_rank_model_and_score_in_view(tmp_path, width):
    # the project's own store in Chromium: on every board, rank, model and the ranking score are inside the
    # visible width without scrolling; at desktop width no board needs a horizontal scroll at all
    from pathlib import Path

    store = tmp_path / "store"
    shutil.copytree(Path(__file__).resolve().parents[2] / "results", store)
    build_leaderboard(store)
    probe = tmp_path / "probe.html"
    probe.write_text(_VISIBILITY_PROBE.format(page=(store / "leaderboard.html").as_uri(), width=width))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
            "--dump-dom", probe.as_uri()]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    boards = re.findall(r"(suite-\S+) view=(\d+) table=(\d+) (.*)", proc.stdout)
    assert len(boards) >= 5, proc.stdout[-2000:] + proc.stderr[-2000:]
    for board, view, table, cells in boards:
        heads = dict(c.rsplit("@", 1) for c in cells.split("<")[0].split(" ") if "@" in c)
        assert list(heads)[:2] == ["rank", "model"], (board, heads)
        assert all(int(right) <= int(view) for right in heads.values()), (width, board, view, heads)
        if width >= 1280:
            assert int(table) <= int(view), f"{board} overflows at {width} px: {table} > {view}"


MEASURE = """<script>
document.addEventListener('DOMContentLoaded',()=>{setTimeout(()=>{
  const probe=document.createElement('span');probe.textContent='0000000000';document.body.appendChild(probe);
  const ch=probe.getBoundingClientRect().width/10;probe.remove();
  const out={viewport:window.innerWidth,overflow:document.documentElement.scrollWidth-window.innerWidth,tables:[],
             legend:[]};
  document.querySelectorAll('table').forEach(t=>{
    const heads=Array.from(t.tHead.rows[0].cells).map(c=>c.textContent.trim());
    const col=heads.indexOf('model');const box=t.parentElement;
    const widths=col<0?[]:Array.from(t.tBodies[0].rows).map(r=>r.cells[col].getBoundingClientRect().width/ch);
    const wider=t.getBoundingClientRect().right>box.getBoundingClientRect().right+1;
    out.tables.push({kind:t.className,modelChars:widths.length?Math.min(...widths):null,
                     cut:wider&&!(box.scrollWidth>box.clientWidth)});});
  document.querySelectorAll('dl.legend dt').forEach(dt=>{const dd=dt.nextElementSibling;
    const a=dt.getBoundingClientRect(),b=dd.getBoundingClientRect();
    const next=dd.nextElementSibling?dd.nextElementSibling.getBoundingClientRect().top:Infinity;
    out.legend.push(Math.abs(a.top-b.top)<2||(b.top>=a.bottom-1&&b.top<next));});
  const pre=document.createElement('pre');pre.id='measure';pre.textContent=JSON.stringify(out);
  document.body.appendChild(pre);},50);});
</script>"""


@pytest.mark.parametrize("width", [1280, 390])
def test_tables_and_glossary_at_desktop_and_phone_widths(tmp_path, width):
    """Every table's model column is at least 16 characters wide, no column is cut (a wide table scrolls in its
    box), the page itself never scrolls sideways, and each glossary term sits with its own definition."""
    import json

    names = ["embedded-simclr-mpd-tinyresnet", "mocov3-vits16-300ep-with-a-long-name", "dinov2-vitg14-reg4-linear4"]
    cards = [make_card(name, suite=suite, values=(((key, 0), 0.3 + 0.1 * i), (("clean", 0), 0.6)))
             for i, name in enumerate(names) for suite, key in (("pd", "pd:PD-L"), ("clean", "clean"))]
    store = write_store(tmp_path / "store", cards)
    build_leaderboard(store)
    page = (store / "leaderboard.html").read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>")
    (tmp_path / "measured.html").write_text(page, encoding="utf-8")
    frame = (f'<!DOCTYPE html><html><body><iframe id="f" src="{(tmp_path / "measured.html").as_uri()}" '
             f'style="width:{width}px;height:900px;border:0"></iframe><script>const t=setInterval(()=>{{'
             "const m=document.getElementById('f').contentDocument.getElementById('measure');"
             "if(m){const p=document.createElement('pre');p.id='measure';p.textContent=m.textContent;"
             "document.body.appendChild(p);clearInterval(t);}},20);</script></body></html>")
    (tmp_path / "frame.html").write_text(frame, encoding="utf-8")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
            (tmp_path / "frame.html").as_uri()]
    dom = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    found = json.loads(html_unescape(re.findall(r'<pre id="measure">(.*?)</pre>', dom, re.S)[-1]))
    assert width - 20 <= found["viewport"] <= width
    assert found["overflow"] <= 0, found
    kinds = {t["kind"] for t in found["tables"]}
    assert {"models", "board ranked"} <= kinds
    for table in found["tables"]:
        assert not table["cut"], table
        if table["modelChars"] is not None:
            assert table["modelChars"] >= 16, table
    assert found["legend"] and all(found["legend"]), found["legend"]
    assert "(3 models)" in page and "models)" not in page.replace("(3 models)", "")


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)
