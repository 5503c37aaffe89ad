"""A store no card can break: property-based fuzzing of every card field (whatever validation accepts, build, show
and submit render), concurrent submits that lose nothing, and cards without evidence refused."""

from __future__ import annotations

import copy
import multiprocessing

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssl_robustbench.cli import main
from ssl_robustbench.results.card import CardError, parse_card, rows_digest
from ssl_robustbench.results.store import FORMATS, build_leaderboard, submit

from cardfactory import card_filename, make_card, write_card, write_store

TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=True) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)

BASE = make_card("fuzz-base", suite="pd", values=((("clean", 0), 0.6), (("pd:left/black", 0), 0.4)))
FIELDS = [("model", k) for k in BASE["model"]] + [("suite",), ("version",), ("created_at",), ("sanity_flags",),
          ("hardware",), ("aggregates",)] + [("protocol", k) for k in BASE["protocol"]] + [
          ("protocol", "head", k) for k in BASE["protocol"]["head"]] + [
          ("rows", 0, k) for k in BASE["rows"][0]]


def _set(card, path, value):
    node = card
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if path[0] == "rows":  # a forger recomputes the hash: validation must still hold
        try:
            card["rows_sha256"] = rows_digest(card["rows"])
        except ValueError:  # NaN/inf cannot be written as JSON: no such card file can exist
            card["rows_sha256"] = "0" * 64


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(FIELDS), value=JSON | TEXT)
def test_whatever_validation_accepts_renders_everywhere(path, value):
    card = copy.deepcopy(BASE)
    _set(card, path, value)
    try:
        parsed = parse_card(card)
    except CardError:
        return
    from ssl_robustbench.results.leaderboard import board_tables, print_tables
    from ssl_robustbench.results.plots import render_plots

    tables = board_tables([parsed])
    for name in FORMATS.names():
        FORMATS.get(name)[1](tables, [parsed], [])
    from rich.console import Console

    console = Console(file=open("/dev/null", "w"), width=100)  # noqa: SIM115
    print_tables(tables, console=console)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        render_plots([parsed], Path(tmp))
    tags, handlers = page_markup(FORMATS.get("html")[1](tables, [parsed], []))
    assert tags <= PAGE_TAGS, tags - PAGE_TAGS
    assert not handlers, "a card's text became an attribute"


@pytest.mark.parametrize("field, value", [(("model", "method"), "<script>alert(1)</script>"),
                                          (("rows", 0, "condition"), "</td><script>x</script>"),
                                          (("protocol", "dataset"), "\" onmouseover=\"x")])
def test_markup_stays_text_in_html(tmp_path, field, value):
    card = copy.deepcopy(BASE)
    _set(card, field, value)
    store = write_store(tmp_path / "s", [card])
    build_leaderboard(store)
    page = (store / "leaderboard.html").read_text()
    assert page.count("<script>") == 1 and "<script>alert" not in page and "<script>x" not in page


PAGE_TAGS = {"html", "head", "meta", "title", "style", "script", "body", "h1", "h2", "p", "input", "table", "thead",
             "tbody", "tr", "th", "td", "div", "img", "dl", "dt", "dd", "ul", "li", "a",  # dl: legends; ul: index
             "details", "summary"}  # the folded per-condition columns


def page_markup(page: str) -> tuple[set[str], list[str]]:
    """The tags of a page and any event-handler attributes (``on*``) — what a card could inject."""
    from html.parser import HTMLParser

    found: tuple[set[str], list[str]] = (set(), [])

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found[0].add(tag)
            found[1].extend(k for k, _ in attrs if k.lower().startswith("on"))

    Collect().feed(page)
    return found


def _submit_one(args):
    source, store = args
    return submit(source, store).cards


def test_concurrent_submits_to_one_store_lose_nothing(tmp_path):
    store = tmp_path / "store"
    sources = []
    for i in range(6):
        path = write_card(tmp_path / f"run{i}", make_card(f"model-{i}", values=((("clean", 0), 0.1 * (i + 1)),)),
                          name="clean.json")
        sources.append((path, str(store)))
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        pool.map(_submit_one, sources)
    board = (store / "LEADERBOARD.md").read_text()
    assert all(f"model-{i}" in board for i in range(6)), board
    assert len(list((store / "cards").glob("*.json"))) == 6
    page = (store / "leaderboard.html").read_text()
    assert all(f"model-{i}" in page for i in range(6))


def test_cards_without_evidence_are_refused_with_the_fix(tmp_path):
    old = copy.deepcopy(BASE) | {"schema_version": 2}
    with pytest.raises(CardError, match="no per-image evidence.*re-run the eval"):
        parse_card(old)
    store = write_store(tmp_path / "s", [BASE])
    (store / "evidence" / f"{card_filename(BASE)[:-5]}.parquet").unlink()
    result = CliRunner().invoke(main, ["leaderboard", "validate", str(store)])
    assert result.exit_code == 1 and "evidence file not found" in result.output
