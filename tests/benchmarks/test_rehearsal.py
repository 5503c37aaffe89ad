"""The full-size rehearsal (``perf/rehearsal.py``) at a reduced scale: trees in the released layouts with the
released sets' relative sizes (Sketch larger than val, as at full size), every suite end to end in one eval, every
card valid against its evidence, and a store of them all valid."""

from __future__ import annotations

import sys

from click.testing import CliRunner
from conftest import REPO

from ssl_robustbench.cli import main
from ssl_robustbench.results.card import load_card_json
from ssl_robustbench.results.store import load_store, submit


def test_every_suite_at_the_released_proportions_writes_a_valid_card(tmp_path):
    sys.path.insert(0, str(REPO / "perf"))
    from rehearsal import COUNTS, write_trees

    trees = tmp_path / "trees"
    counts = write_trees(trees, 0.002, train_per_class=1, conditions_3dcc=1)
    assert counts["sketch"] > counts["val"]  # 50,889 sketches against 50,000 val images, scaled
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "eval", "--model", "embedded-simclr-tinyresnet", "--data", "imagenet", "--data-root", str(trees / "imagenet"),
        "--device", "cpu", "--out", str(out), "--suite", "clean,v2,sketch,r,a,3dcc,c,pd",
        "--v2-root", str(trees / "v2"), "--sketch-root", str(trees / "sketch"), "--r-root", str(trees / "r"),
        "--a-root", str(trees / "a"), "--3dcc-root", str(trees / "3dcc"), "--set", "3dcc.images=all",
        "--set", "3dcc.severities=[1]", "--set", "3dcc.corruptions=[near_focus]", "--set", "c.limit=8",
        "--set", "c.severities=[3]", "--set", "pd.limit=8"])
    assert result.exit_code == 0, result.output
    sizes = {}
    for suite in ("clean", "v2", "sketch", "r", "a", "3dcc", "c", "pd"):
        card = load_card_json(out / "cards" / f"{suite}.json")
        sizes[suite] = card.protocol.subset_size
    assert sizes["clean"] == counts["val"] and sizes["sketch"] == round(COUNTS["sketch"] * 0.002)
    assert sizes["sketch"] > sizes["clean"]  # the tree's own image set, larger than the evaluation set
    report = submit(out, str(tmp_path / "store"))
    assert len(report.cards) == 8
    cards, errors = load_store(tmp_path / "store")
    assert len(cards) == 8 and not errors
