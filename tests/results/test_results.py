"""The ResultRow schema and its files."""

import dataclasses
import json

import pandas as pd
import pytest

from ssl_robustbench.errors import UserError
from ssl_robustbench.results import COLUMNS, ResultRow, read_table, write_table
from ssl_robustbench.results.summary import summary_frame


def row(**kw):
    base = dict(model_id="m", method="simclr", arch="tiny_resnet", suite="clean", condition="clean", severity=0,
                metric="top1", value=0.5, n=100, seed=0, probe_id="abc", config_hash="0123", version="0.1.0",
                created_at="2026-01-01T00:00:00+00:00")
    return ResultRow(**{**base, **kw})


def test_columns_are_the_design_contract():
    assert COLUMNS == ["model_id", "method", "arch", "suite", "condition", "severity", "metric", "value", "n",
                       "seed", "probe_id", "config_hash", "version", "created_at"]


@pytest.mark.parametrize("ext", ["csv", "parquet", "json"])
def test_roundtrip(tmp_path, ext):
    rows = [row(), row(condition="c:fog", severity=3, value=0.25)]
    paths = write_table(rows, tmp_path)
    assert [p.suffix for p in paths] == [".csv", ".parquet", ".json"]
    assert read_table(tmp_path / f"results.{ext}") == rows
    assert list(pd.read_csv(tmp_path / "results.csv").columns) == COLUMNS


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        row(value=float("nan"))


def test_malformed_files_are_user_errors(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text(json.dumps([{"model_id": "m"}]))
    good = dataclasses.asdict(row())
    (tmp_path / "c.json").write_text(json.dumps([{**good, "n": "many"}]))
    (tmp_path / "d.txt").write_text("")
    for name, msg in [("a.json", "not valid JSON"), ("b.json", "columns must be"), ("c.json", "row 0"),
                      ("d.txt", "must be .csv")]:
        with pytest.raises(UserError, match=msg):
            read_table(tmp_path / name)


def test_summary_pivots_metrics_in_percent():
    frame = summary_frame([row(value=0.5), row(metric="error", value=0.5)])
    assert frame.loc[0, "top1"] == 50.0 and frame.loc[0, "error"] == 50.0 and frame.loc[0, "n"] == 100


def test_compact_summary_is_one_line_per_suite():
    from ssl_robustbench.results.summary import compact_lines

    rows = [row(), row(suite="pd", condition="clean", value=0.6, n=50),
            row(suite="pd", condition="pd:left/black", value=0.2, n=50),
            row(suite="pd", condition="pd:black", metric="mean_top1", value=0.2, n=50),
            row(suite="pd", condition="pd:all", metric="mean_top1", value=0.2, n=50),
            row(suite="pd", condition="pd:all", metric="drop", value=0.4, n=50)]
    assert compact_lines(rows) == [("clean", 100, "top1 50.00"),
                                   ("pd", 50, "clean 60.00 (same 50 images) · mean_top1 20.00 · black 20.00 · "
                                              "drop 40.00")]


def test_accuracy_plot_is_one_readable_panel_per_suite(tmp_path):
    from PIL import Image

    from ssl_robustbench.results.summary import plot_accuracy

    rows = [row(), *[row(suite="c", condition=f"c:{c}", severity=s, value=0.5 - 0.05 * s)
                     for c in ("fog", "gaussian_noise", "contrast") for s in range(1, 6)],
            *[row(suite="pd", condition=f"pd:{v}/{b}", value=0.3)
              for v in ("left", "right") for b in ("black", "padded")],
            row(suite="adversarial", condition="adversarial:all", metric="aa", value=0.1)]
    path = plot_accuracy(rows, tmp_path / "accuracy.png")
    width, height = Image.open(path).size
    # 4 suites: a 3 × 2 grid of readable panels (not one strip of 20 bars thousands of pixels wide)
    assert 1400 <= width <= 1600 and 600 <= height <= 800
