"""The leaderboard as one self-contained HTML page: sortable, filterable tables and embedded PNG plots.

No CDN and no network: styles and script are inline, plots are data URIs, and a Content-Security-Policy forbids
everything else. Every value from a card is escaped with ``html.escape`` and the script only ever sets
``textContent``, so markup in a card's fields is shown as text. One table per board, after an index of the boards; rank,
model and the ranking score stay in view (sticky) when a wide table scrolls, down to a 390-px phone screen.
A sort can be linked: ``#sort=<board id>:<column>:<asc|desc>`` (column index from 0) is applied on load, e.g.
``leaderboard.html#sort=clean-09d8721d:2:asc``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ssl_robustbench.results.leaderboard import _cell, column_legend, count_models, model_summary

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:100%;box-sizing:border-box;
color:#222;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0 0.5em}
table{border-collapse:separate;border-spacing:0}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;white-space:nowrap;background:#fff}
th{cursor:pointer;background:#f4f4f4;user-select:none}
.ranked th:nth-child(-n+3),.ranked td:nth-child(-n+3){position:sticky;z-index:1;box-sizing:border-box}
.ranked th:nth-child(1),.ranked td:nth-child(1){left:0;min-width:4em;max-width:4em;white-space:normal}
.ranked th:nth-child(2),.ranked td:nth-child(2){left:4em;min-width:13em;max-width:13em;white-space:normal;
overflow-wrap:anywhere}
.ranked th:nth-child(3),.ranked td:nth-child(3){left:17em;border-right:1px solid #ddd}
table.models th:nth-child(1),table.models td:nth-child(1){position:sticky;left:0;z-index:1;min-width:13em;
max-width:13em;white-space:normal;overflow-wrap:anywhere;border-right:1px solid #ddd}
details{margin:0 0 0.5em}summary{cursor:pointer;color:#555}
dl.legend{font-size:12px;color:#555;margin:0 0 2em;display:grid;grid-template-columns:max-content 1fr;gap:0 1em}
dl.legend dt{font-weight:600}dl.legend dd{margin:0}
@media (max-width:600px){dl.legend{grid-template-columns:1fr}dl.legend dd{margin:0 0 0.6em 1em}}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
input{font-size:14px;padding:4px;width:20em;max-width:100%;box-sizing:border-box}
img{max-width:100%;box-sizing:border-box;margin:0 1em 1em 0;border:1px solid #eee}
"""

_SCRIPT = """
function cellValue(td){const v=td.getAttribute('data-value');return v===null?td.textContent:v;}
function sortTable(table,col,dir){
  const body=table.tBodies[0];const rows=Array.from(body.rows);
  const numeric=table.tHead.rows[0].cells[col].getAttribute('data-num')==='1';
  rows.sort((a,b)=>{let x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
    if(numeric){x=parseFloat(x);y=parseFloat(y);x=isNaN(x)?-Infinity:x;y=isNaN(y)?-Infinity:y;}
    return (x<y?-1:x>y?1:0)*(dir==='asc'?1:-1);});
  rows.forEach(r=>body.appendChild(r));
  Array.from(table.tHead.rows[0].cells).forEach((th,i)=>{if(i===col){th.setAttribute('data-dir',dir);}
    else{th.removeAttribute('data-dir');}});
}
function applyFilter(){const q=document.getElementById('filter').value.toLowerCase();
  document.querySelectorAll('table.board tbody tr, table.conditions tbody tr').forEach(r=>{
    r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';});}
document.addEventListener('DOMContentLoaded',()=>{
  document.querySelectorAll('table.board').forEach(table=>{
    Array.from(table.tHead.rows[0].cells).forEach((th,i)=>th.addEventListener('click',()=>{
      sortTable(table,i,th.getAttribute('data-dir')==='desc'?'asc':'desc');}));});
  document.getElementById('filter').addEventListener('input',applyFilter);
  const m=/^#sort=([a-z0-9._-]+):(\\d+):(asc|desc)$/.exec(decodeURIComponent(location.hash));
  if(m){const t=document.getElementById('suite-'+m[1]);if(t&&+m[2]<t.tHead.rows[0].cells.length){
    sortTable(t,+m[2],m[3]);}}
});
"""


def _rows(frame: pd.DataFrame) -> str:
    esc = html.escape
    body = []
    numeric = [dtype.kind in "fi" for dtype in frame.dtypes]
    for rec in frame.itertuples(index=False):
        cells = []
        for is_number, value in zip(numeric, rec, strict=True):
            if is_number:
                cells.append(f'<td class="num" data-value="{esc(str(value))}">{esc(_cell(value))}</td>')
            else:
                cells.append(f"<td>{esc(_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(body)


def _head(frame: pd.DataFrame) -> str:
    return "".join(f'<th data-num="{int(frame[c].dtype.kind in "fi")}">{html.escape(str(c))}</th>'
                   for c in frame.columns)


def _plain_table(frame: pd.DataFrame, kind: str = "conditions ranked") -> str:
    """A scrollable table without the board's sorting: a board's folded per-condition columns (rank, model first:
    ``conditions ranked``) or the models summary (model first: ``models``)."""
    return (f'<div class="scroll"><table class="{kind}"><thead><tr>{_head(frame)}</tr></thead>'
            f"<tbody>{_rows(frame)}</tbody></table></div>")


def _table(name: str, frame: pd.DataFrame) -> str:
    """One board: its summary table (sortable), the per-condition columns, method and arch folded below it (as
    ``leaderboard show`` without ``--wide``), and the legend of its columns."""
    esc = html.escape
    title = frame.attrs.get("title", name)
    details = [c for c in frame.attrs.get("details", []) if c in frame]
    summary = frame.drop(columns=details)
    folded = ""
    if details:
        extra = frame[["rank", "model", *details]]
        folded = (f"<details><summary>{len(details)} more columns: method, arch and each condition's top-1"
                  f"</summary>{_plain_table(extra)}</details>")
    legend = "".join(f"<dt>{esc(str(c))}</dt><dd>{esc(text)}</dd>" for c in summary.columns
                     if (text := column_legend(str(c), frame.attrs.get("suite"))))
    return (f'<h2 id="{esc(name)}">{esc(title)}</h2>\n<p class="board-id">board {esc(name)}, ranked by '
            f'{esc(str(frame.attrs.get("rank_by")))}</p>'
            f'<div class="scroll"><table class="board ranked" id="suite-{esc(name)}">'
            f"<thead><tr>{_head(summary)}</tr></thead><tbody>{_rows(summary)}</tbody></table></div>{folded}"
            f'<dl class="legend">{legend}</dl>')


def to_html(tables: dict[str, pd.DataFrame], plots: list[Path], *, title: str = "ssl-robustbench leaderboard") -> str:
    """The whole page as a string."""
    images = "".join(
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in plots)
    sections = "\n".join(_table(name, frame) for name, frame in tables.items())
    if tables:
        models = model_summary(tables)
        sections = f"<h2>{html.escape(models.attrs['title'])}</h2>{_plain_table(models, 'models')}\n" + sections
    index = "".join(f'<li><a href="#{html.escape(name)}">{html.escape(frame.attrs.get("title", name))}</a> '
                    f"({count_models(len(frame))})</li>" for name, frame in tables.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{html.escape(title)}</title><style>{_STYLE}</style><script>{_SCRIPT}</script></head>
<body><h1>{html.escape(title)}</h1>
<p>Values in %. Click a column to sort; type to filter. Every derived column is explained under its table.</p>
<p>One board per suite and protocol: ranks exist only within a board.</p><ul class="index">{index}</ul>
<input id="filter" type="search" placeholder="filter models, methods, archs…">
{sections}
<h2>plots</h2><div>{images}</div>
</body></html>
"""
