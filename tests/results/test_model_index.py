"""A run's results as the Hub model card's ``model-index`` (issue 42, item 4): every aggregate of every suite card,
in percent, named with its protocol; the YAML validates against the Hub's schema (``huggingface_hub`` parses it back
into the same ``EvalResult`` entries, and ``ModelCardData`` accepts it)."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from ssl_robustbench.cli import main

from cardfactory import make_card, write_card


@pytest.fixture
def run(tmp_path):
    root = tmp_path / "run"
    write_card(root, make_card(values=((("clean", 0), 0.8),)))
    write_card(root, make_card(suite="pd", values=[((view, 0), 0.4 + 0.1 * i) for i, view in
                                                    enumerate(["clean", "PD-L", "PD-R", "PD-T", "PD-B"])]))
    return root


def test_model_index_round_trips_through_the_hubs_schema(run, tmp_path):
    out = tmp_path / "model-index.yaml"
    result = CliRunner().invoke(main, ["export", "model-index", str(run), "--model-name", "org/my-ssl",
                                       "--source-url", "https://example.org/board", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(out.read_text())
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "org/my-ssl" and len(results) >= 2
    ModelCardData(model_name=name, eval_results=results)  # the Hub's own card metadata takes them
    clean = next(r for r in results if r.dataset_config == "clean")
    assert (clean.task_type, clean.dataset_type, clean.metric_type, clean.metric_value) == \
        ("image-classification", "embedded", "accuracy", 80.0)
    assert "linear probe" in clean.metric_name and "100 images" in clean.metric_name
    assert clean.verified is False and clean.source_url == "https://example.org/board"
    pd_results = [r for r in results if r.dataset_config == "pd"]
    assert pd_results[0].dataset_name == "ImageNet-PD" and pd_results[0].metric_name.startswith("mean_top1")
    assert {r.metric_type for r in pd_results} >= {"accuracy"}


def test_cards_of_two_models_or_none_are_refused(run, tmp_path):
    write_card(run, make_card(model="other-1"))
    result = CliRunner().invoke(main, ["export", "model-index", str(run)])
    assert result.exit_code == 2 and "describes one model" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["export", "model-index", str(empty)])
    assert result.exit_code == 2 and "is not a finished eval run directory (no cards/)" in result.output
