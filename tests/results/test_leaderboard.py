"""Result cards, the rendered leaderboard, submission to a directory and to a bare git repository."""

from __future__ import annotations

import copy
import json
import random
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_robustbench.cli import main
from ssl_robustbench.results.card import CardError, parse_card, rows_digest
from ssl_robustbench.results.leaderboard import board_tables, escape_latex, escape_markdown, to_latex, to_markdown
from ssl_robustbench.results.store import FORMATS, build_leaderboard, load_store

from cardfactory import (
    INJECT,
    board_of,
    card_filename,
    card_object,
    make_card,
    verified,
    verified_store,
    write_card,
    write_store,
)

REPO = Path(__file__).resolve().parents[2]


def cards(*dicts):
    return [parse_card(copy.deepcopy(d)) for d in dicts]


def suite_tables(cards_):
    """Board tables by suite (each test here has one protocol per suite), every card verified."""
    return {f.attrs["suite"]: f for f in board_tables(cards_, statuses=verified(cards_)).values()}


def test_valid_card_passes_and_edits_are_caught():
    card = make_card()
    assert parse_card(copy.deepcopy(card)).to_json() == card
    edited = copy.deepcopy(card)
    edited["rows"][0]["value"] = 0.99
    with pytest.raises(CardError, match="rows_sha256 does not match"):
        parse_card(edited)
    other = make_card(config="cd" * 8)
    other["rows"][0]["config_hash"] = "ef" * 8
    other["rows_sha256"] = rows_digest(other["rows"])
    with pytest.raises(CardError, match="config_hash differ"):
        parse_card(other)


def test_aggregates_are_recomputed_never_trusted():
    honest = make_card("random-init", values=((("clean", 0), 0.19),))
    boasting = copy.deepcopy(honest)
    boasting["aggregates"]["mean_top1"] = 0.99  # the rows still match their hash
    with pytest.raises(CardError, match="aggregates do not follow from the rows .*mean_top1=0.1900"):
        parse_card(boasting)
    reranked = copy.deepcopy(honest)
    reranked["rank_by"] = "anything"  # a card's own ranking choice is ignored: the suite's metric ranks
    assert parse_card(reranked).rank_metric == "mean_top1"


@pytest.mark.parametrize("path, value, message", [
    (("model", "id"), "../../etc", "no paths"),
    (("model", "id"), "a/b", "no paths"),
    (("suite",), "<b>x</b>", "no paths, no markup"),
    (("suite",), "toy-suite", "not a registered benchmark"),
    (("schema_version",), 5, "schema_version"),
    (("schema_version",), 2, "no per-image evidence"),
    (("schema_version",), 3, "no derivable board key"),
    (("protocol", "config_hash"), "ab" * 32, "not the digest of the card's protocol"),
    (("protocol", "config_hash"), "ab" * 8, "64 hex"),
    (("protocol", "images"), {"conditions": 1, "n": 100}, "exactly conditions, n and sha256"),
    (("protocol", "eval_data", "n"), 99, "not the digest"),
    (("model", "weights"), {"kind": "url", "url": "https://x.org/w.pth", "zoo_card": {"id": "w"}},
     "cannot rebuild the model"),
    (("model", "id"), "model-a\n", "no paths"),
    (("model", "id"), "model-a.", "no paths"),
    (("model", "id"), "mоdel-a", "no paths"),
    (("model", "id"), "model\u200b-a", "no paths"),
    (("model", "weights"), {"kind": "url", "url": "javascript:x", "zoo_card": {}}, "http"),
    (("model", "weights"), {"kind": "somewhere"}, "kind must be one of"),
    (("protocol", "subset_size"), 0, "≥ 1"),
    (("protocol", "subset_size"), 5000, "not the digest"),
    (("created_at",), "9999-01-01T00:00:00+00:00", "future"),
    (("created_at",), "2026-01-01T00:00:00", "time zone"),
    (("evidence",), {"sha256": "a" * 64}, "exactly sha256 and head_sha256"),
    (("aggregates", "mean_top1"), float("inf"), "finite"),
    (("aggregates", "mean_top1"), True, "must be a number"),
    (("model", "checkpoint_sha256"), "xyz", "64 hex"),
    (("model", "method"), 1.5, "must be a string"),
    (("model", "paper"), "ok\x1b[2J", "control"),
    (("model", "license"), "MIT\u202e", "bidi"),
    (("created_at",), "yesterday", "ISO 8601"),
    (("rows", 0, "value"), 5.0, "outside"),
    (("rows", 0, "value"), -3.0, "outside"),
    (("rows", 0, "value"), 1e11, "outside"),
    (("rows", 0, "n"), 0, "≥ 1"),
    (("rows", 0, "n"), 101, "exceeds"),
    (("rows",), [], "non-empty list"),
    (("protocol", "seed"), "0", "must be a number"),
    (("protocol", "head", "recipe"), {"a": float("nan")}, "finite"),
    (("protocol", "details"), {"x" * 300: 1}, "longer than"),
    (("hardware",), {"device": [[[[[[[["deep"]]]]]]]]}, "nested too deeply"),
])
def test_each_malformed_field_is_named(path, value, message):
    card = make_card()
    node = card
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if path[0] == "rows":  # a forger recomputes the digest: the values must still be refused
        card["rows_sha256"] = rows_digest(card["rows"])
    with pytest.raises(CardError, match=message):
        parse_card(card)


def test_control_characters_in_rows_are_refused():
    card = make_card(values=((("\x1b]0;title\x07clean", 0), 0.5),))
    with pytest.raises(CardError, match="control"):
        parse_card(card)


def test_math_and_markup_in_labels_render_everywhere(tmp_path):
    odd = make_card("m-odd", suite="pd", values=(((r"$\foo$ {x} \bar%_&#", 0), 0.4), (("pd:left/black", 0), 0.3),
                                                 (("clean", 0), 0.5)))
    store = write_store(tmp_path / "s", [odd, make_card("m-odd")])
    paths = build_leaderboard(store, formats=tuple(FORMATS.names()))  # matplotlib must not parse it as math
    names = {p.name for p in paths}
    board = board_of(odd)
    assert "LEADERBOARD.tex" in names and {f"{board}_vs_clean.png", f"{board}_by_condition.png"} <= names


def _mutations(card, rng):
    """Random structural damage: dropped keys, wrong types, NaN/inf, deep nesting, huge strings, traversal ids."""
    junk = [None, 1, -1.5, float("nan"), float("inf"), "", "x" * 5000, [], {}, [[[]]], True, "../x", "<script>",
            {"a": {"b": {"c": []}}}]
    for _ in range(rng.randint(1, 4)):
        node, path = card, []
        while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            return rng.choice(junk)
        parent, key = path[-1]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[key]
        else:
            parent[key] = rng.choice(junk)
    return card


def test_fuzzed_cards_never_crash_validate(tmp_path):
    rng = random.Random(0)
    base = make_card()
    store = write_store(tmp_path / "store", [])
    for i in range(300):
        bad = _mutations(copy.deepcopy(base), rng)
        text = json.dumps(bad) if rng.random() < 0.9 else json.dumps(bad)[: rng.randrange(1, 50)]
        (store / "cards" / f"fuzz{i}.json").write_text(text)
    (store / "cards" / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (store / "cards" / "deep.json").write_text("[" * 100000 + "]" * 100000)
    cards, errors = load_store(store)  # must not raise
    assert len(cards) + len(errors) == 302 and len(errors) >= 290
    result = CliRunner().invoke(main, ["leaderboard", "validate", str(store)])
    assert result.exit_code == 1 and "invalid" in result.output and "Traceback" not in result.output


def test_tables_rank_and_difference_columns():
    board = cards(make_card("a", values=((("clean", 0), 0.9),)), make_card("b", values=((("clean", 0), 0.7),)),
                  make_card("a", suite="pd", values=((("clean", 0), 0.8), (("left", 0), 0.3), (("right", 0), 0.5))),
                  make_card("b", suite="pd", values=((("clean", 0), 0.7), (("left", 0), 0.6), (("right", 0), 0.6))))
    tables = suite_tables(board)
    assert list(tables) == ["clean", "pd"]
    pd_ = tables["pd"].set_index("model")
    assert pd_.loc["a", "clean"] == pytest.approx(80.0)  # the card's own clean row: same images, same head
    assert pd_.loc["b", "rank"] == 1 and pd_.loc["a", "drop"] == pytest.approx(40.0)
    assert "Δ clean" not in pd_  # the drop says it
    assert pd_.loc["b", "Δ rank"] == 1 and pd_.loc["a", "Δ rank"] == -1
    assert pd_.loc["a", "left"] == pytest.approx(30.0)
    assert "warning" not in tables["clean"]
    flagged = card_object("c", values=((("clean", 0), 0.1),), flags=("zero gradients",))
    assert suite_tables([*board, flagged])["clean"].set_index("model").loc["c", "warning"] == "⚠ zero gradients"


def test_markup_is_escaped_in_markdown_and_latex():
    md = to_markdown(suite_tables([card_object(method=INJECT)]))
    assert "<img" not in md and "&lt;img" in md and "\\|" in md
    assert escape_markdown("a|b") == "a\\|b" and escape_latex("50%_x") == r"50\%\_x"
    assert r"\$" in to_latex(suite_tables([card_object(method="$x$")]))


def test_build_writes_markdown_html_plots_and_latex(tmp_path):
    c = make_card("a", suite="c", values=((("fog", 1), 0.4), (("fog", 2), 0.3)))
    store = write_store(tmp_path / "s", [make_card("a"), make_card("b", values=((("clean", 0), 0.2),)), c])
    paths = build_leaderboard(store, formats=("markdown", "html", "latex", "csv", "json"))
    names = {p.name for p in paths}
    assert {"LEADERBOARD.md", "leaderboard.html", "LEADERBOARD.tex", "leaderboard.csv", "leaderboard.json",
            f"{board_of(make_card('a'))}_top1.png", f"{board_of(c)}_by_severity.png"} <= names
    page = (store / "leaderboard.html").read_text()
    assert "http://" not in page and "https://" not in page and "data:image/png;base64," in page


def _run_submit(args):
    return CliRunner().invoke(main, ["submit", *map(str, args)])


def test_submission_round_trip_to_a_bare_git_repo(tmp_path):
    bare = tmp_path / "store.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    card = make_card("model-x")
    card_file = write_card(tmp_path / "run", card, name="clean.json")
    dry = _run_submit([card_file, "--to", bare, "--dry-run"])
    branch = f"submit/model-x-clean-{card['protocol']['config_hash'][:12]}"
    assert dry.exit_code == 0 and f"would push branch {branch}" in dry.output
    assert subprocess.run(["git", "-C", str(bare), "branch", "--list"], capture_output=True,
                          text=True).stdout == ""
    done = _run_submit([card_file, "--to", bare])
    assert done.exit_code == 0, done.output
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--branch", branch, str(bare), str(clone)], check=True)
    stored = json.loads((clone / "cards" / card_filename(card)).read_text())
    assert stored == card and (clone / "LEADERBOARD.md").is_file() and (clone / "leaderboard.html").is_file()
    log = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%s"], capture_output=True, text=True)
    assert log.stdout.strip() == "Add result cards for model-x: clean"
    assert (clone / "evidence" / f"{card_filename(card)[:-5]}.parquet").is_file()
    # the same card again (a retry after a killed push): a no-op with a message, not git's fast-forward hint
    again = _run_submit([card_file, "--to", bare])
    assert again.exit_code == 0 and "already in" in again.output, again.output
    # and once the branch is merged as the store's main line, too
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", f"refs/heads/{branch}"], check=True)
    third = _run_submit([card_file, "--to", bare])
    assert third.exit_code == 0 and "already in" in third.output
    # another card under the same file name is refused
    other = write_card(tmp_path / "run2", make_card("model-x", values=((("clean", 0), 0.9),)), name="clean.json")
    clash = _run_submit([other, "--to", bare])
    assert clash.exit_code == 2 and "other results" in clash.output
    # no temporary clone is left behind, and one a killed submit left (its process gone) is removed by the next
    import tempfile
    from pathlib import Path

    from ssl_robustbench.results.store import SCRATCH_PREFIX
    stale = Path(tempfile.gettempdir()) / f"{SCRATCH_PREFIX}999999999-killed"
    (stale / "store").mkdir(parents=True, exist_ok=True)
    assert _run_submit([card_file, "--to", bare]).exit_code == 0
    assert not stale.exists()
    assert not [p for p in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*")
                if p.name.split("-")[2] == str(__import__("os").getpid())]
    # a store value that git would read as an option is refused before git runs
    option = _run_submit([card_file, "--to", "--upload-pack=touch /tmp/pwned"])
    assert option.exit_code == 2 and "must not begin with '-'" in option.output


def test_submission_to_a_directory_refuses_tampered_cards(tmp_path):
    card = make_card("model-y")
    card["rows"][0]["value"] = 0.1  # rows no longer match rows_sha256
    path = write_card(tmp_path / "run", card, name="clean.json")
    result = _run_submit([path, "--to", tmp_path / "store"])
    assert result.exit_code == 2 and "rows_sha256" in result.output
    assert not (tmp_path / "store").exists()
    nan = write_card(tmp_path / "run2", make_card(), name="clean.json")
    nan.write_text(nan.read_text().replace("0.5", "NaN"))
    assert _run_submit([nan, "--to", tmp_path / "store"]).exit_code == 2


def test_many_condition_suites_show_aggregates_and_their_own_clean_row():
    c_values = [(("clean", 0), 0.8)] + [((f"c:{name}", s), 0.5) for name in ("fog", "frost", "snow")
                                        for s in range(1, 6)]
    pd_values = [(("clean", 0), 0.8), (("pd:left/black", 0), 0.4), (("pd:left/padded", 0), 0.6)]
    tables = suite_tables([card_object(suite="c", values=c_values), card_object(suite="pd", values=pd_values)])
    assert not any(col.startswith("c:f") for col in tables["c"].columns), "15 conditions: aggregates only"
    assert {"pd:left/black", "pd:left/padded"} <= set(tables["pd"].columns)
    assert "clean" in tables["pd"].columns and tables["pd"]["clean"][0] == pytest.approx(80.0)
    assert tables["pd"]["drop"][0] == pytest.approx(80.0 - 100 * (0.4 + 0.6) / 2)


def test_flagged_cards_are_not_ranked_and_intervals_are_shown():
    honest = card_object(model="honest", suite="adversarial", values=((("slf/aa", 0), 0.30),))
    masked = card_object(model="masked", suite="adversarial", values=((("slf/aa", 0), 0.70),),
                         flags=("zero gradients for 100% of inputs",))
    table = suite_tables([masked, honest])["adversarial"]
    by_model = table.set_index("model")
    # the masked model has the best AA but ranks apart, after every unflagged card
    assert by_model.loc["honest", "rank"] == 1 and by_model.loc["masked", "rank"] == "unranked"
    assert list(table["model"]) == ["honest", "masked"]
    # AA 30 % on the card's 100 images: the 95 % Wilson interval, about ±9 points
    assert by_model.loc["honest", "aa 95% CI"] == "21.9–39.6"


def test_show_fits_an_80_column_terminal_without_cutting_a_number(tmp_path):
    cards = [make_card(model=f"embedded-simclr-variant-{i}-tinyresnet", suite="pd",
                       values=tuple(((f"pd:{v}/{b}", 0), 0.1 * i + 0.01 * j) for j, (v, b) in enumerate(
                           [(v, b) for b in ("black", "padded") for v in ("left", "right", "top", "bottom")])))
             for i in range(1, 4)]
    verified_store(tmp_path / "store", cards)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["leaderboard", "show", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for i in range(1, 4):  # every model: its rank, whole name and whole score on one line
        score = f"{100 * sum(0.1 * i + 0.01 * j for j in range(8)) / 8:.2f}"
        assert any(f"embedded-simclr-variant-{i}-tinyresnet" in line and score in line and f"│    {4 - i} │" in line
                   for line in lines), (i, score, result.output)
    assert "(--wide adds method, arch and 8 conditions)" in result.output
    wide = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["leaderboard", "show", "--wide", "--store",
                                                        str(tmp_path / "store")])
    assert "pd:left/black" in wide.output and "--wide adds" not in wide.output


@pytest.mark.parametrize("width", [80, 120])
def test_a_one_model_board_has_no_page_without_numbers(tmp_path, width):
    """One card on a board: no Δ rank (every rank is 1), so no page holds only it; at 120 columns one page."""
    card = make_card(model="embedded-simclr-tinyresnet", suite="pd",
                     values=tuple(((f"pd:{v}/{b}", 0), 0.3) for b in ("black", "padded")
                                  for v in ("left", "right", "top", "bottom")) + ((("clean", 0), 0.5),))
    verified_store(tmp_path / "store", [card])
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(main, ["leaderboard", "show", "--store",
                                                                  str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    headers = _header_cells(result.output)
    assert all("Δ rank" not in h for h in headers)
    assert all(len(h) > 2 for h in headers)  # every page holds a number beside rank and model
    if width == 120:
        assert "(1/2)" not in result.output and len(headers) == 1, result.output


def _header_cells(output):
    """The column names of every rich table in ``output``."""
    return [[c.strip() for c in line.strip("┃").split("┃")] for line in output.splitlines() if line.startswith("┃")]


@pytest.mark.parametrize("width", [80, 120])
def test_shipped_boards_read_whole_at_80_and_120_columns(width):
    # the project's own store: every table fits, every part names its rows (rank and model), no column twice
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(main, ["leaderboard", "show", "--store",
                                                                  str(REPO / "results")])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= width
    headers = _header_cells(result.output)
    assert headers and all(h[:2] == ["rank", "model"] for h in headers), headers
    for h in headers:
        assert len(h) == len(set(h)), h
    adversarial = [h for h in headers if "sa" in h]
    assert adversarial and all("clean" not in h for h in adversarial)  # its clean column is SA, shown once
    assert not {"slf/clean", "e:ori"} & {c for h in headers for c in h}  # copies of sa and ori
    # Δ rank is an integer column: never "0.00"
    for part in result.output.split("┏")[1:]:
        lines = part.splitlines()
        head = [c.strip() for c in lines[1].strip("┃").split("┃")]
        if "Δ rank" in head:
            k = head.index("Δ rank")
            cells = [ln.strip("│").split("│")[k].strip() for ln in lines if ln.startswith("│")]
            assert cells and all(c.lstrip("-").isdigit() or c == "–" for c in cells), cells


@pytest.mark.parametrize("width", [80, 120])
def test_zoo_list_reads_whole_at_80_and_120_columns(width):
    from ssl_robustbench.zoo import list_cards

    result = CliRunner(env={"COLUMNS": str(width)}).invoke(main, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= width
    for card in list_cards():  # each id whole on one line, every part starts with it
        assert any(f"│ {card.id} " in line for line in lines), card.id
    assert all(h[0] == "id" for h in _header_cells(result.output))
