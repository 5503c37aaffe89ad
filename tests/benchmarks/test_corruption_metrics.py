"""ImageNet-C metrics against RobustBench's published numbers (../shared/reference)."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SHARED

from ssl_robustbench.benchmarks.corruption_metrics import (
    CORRUPTIONS,
    HENDRYCKS_ALEXNET_ERR,
    SEVERITIES,
    corruption_metrics,
    metrics_table,
    read_accuracy_table,
)
from ssl_robustbench.cli import main
from ssl_robustbench.errors import UserError

TABLE = SHARED / "reference" / "robustbench_imagenet_c_unaggregated.csv"
needs_table = pytest.mark.skipif(not TABLE.is_file(), reason="../shared/reference is not beside the checkout")


@needs_table
def test_standard_r50_matches_robustbench_published_aggregate():
    frame = metrics_table(read_accuracy_table(TABLE), baseline="AlexNet").set_index("model")
    # Standard_R50.json in RobustBench: corruption accuracy 39.48 %, mCE 76.38 %
    assert round(100 * frame.loc["Standard_R50", "mean_acc"], 2) == 39.48
    assert round(100 * frame.loc["Standard_R50", "mce"], 2) == 76.38
    assert frame.loc["AlexNet", "mce"] == pytest.approx(1.0) and "relative_mce" not in frame


def test_hendrycks_normalizer_and_relative_mce():
    # an accuracy table equal to AlexNet's published errors gives mCE 1 under Hendrycks' normalizer
    alexnet = {(c, s): 1 - HENDRYCKS_ALEXNET_ERR[c] for c in CORRUPTIONS for s in SEVERITIES}
    assert corruption_metrics(alexnet)["mce"] == pytest.approx(1.0)
    better = {k: v + 0.1 for k, v in alexnet.items()}
    m = corruption_metrics(better, clean=0.8, baseline_clean=0.5)
    expected_rel = sum((HENDRYCKS_ALEXNET_ERR[c] - 0.1 - 0.2) / (HENDRYCKS_ALEXNET_ERR[c] - 0.5)
                       for c in CORRUPTIONS) / 15
    assert m["relative_mce"] == pytest.approx(expected_rel) and m["mean_err"] == pytest.approx(
        sum(HENDRYCKS_ALEXNET_ERR.values()) / 15 - 0.1)
    assert "relative_mce" not in corruption_metrics(better, clean=0.8)  # no baseline clean: no silent guess


@needs_table
def test_bad_tables_are_user_errors(tmp_path):
    frame = pd.read_csv(TABLE, header=[0, 1], index_col=0)
    frame.drop(columns=[("fog", "3")]).to_csv(tmp_path / "gap.csv")
    with pytest.raises(UserError, match="no column for fog severity 3"):
        read_accuracy_table(tmp_path / "gap.csv")
    (frame * 100).to_csv(tmp_path / "percent.csv")
    with pytest.raises(UserError, match="fractions"):
        read_accuracy_table(tmp_path / "percent.csv")
    with pytest.raises(UserError, match="baseline row 'VGG'"):
        metrics_table(read_accuracy_table(TABLE), baseline="VGG")


@needs_table
def test_cli_prints_and_writes(tmp_path):
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(main, ["metrics", "c", "--from", str(TABLE), "--baseline", "AlexNet",
                                       "--clean", "Standard_R50=0.7672", "--clean", "AlexNet=0.5652",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "76.38" in result.output and "AlexNet (table row)" in result.output
    written = pd.read_csv(out).set_index("model")
    assert written.loc["Standard_R50", "relative_mce"] > 1.0  # ResNet-50 degrades more than AlexNet, relatively
    bad = CliRunner().invoke(main, ["metrics", "c", "--from", str(TABLE), "--clean", "x=1.5"])
    assert bad.exit_code == 2 and "fraction" in bad.output
