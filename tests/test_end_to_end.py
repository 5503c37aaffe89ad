"""`robustbench eval` on the bundled checkpoints and the embedded dataset, end to end.

These are the claims the README makes about the embedded default: a trained SSL network beats a random one by a
clear margin, blur, noise and perspective warps lower accuracy measurably, and a re-run resumes from its files.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from click.testing import CliRunner
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as TF

from ssl_robustbench.cli import main
from ssl_robustbench.config import build
from ssl_robustbench.data import DataRequest, build_dataset
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.evaluation import run_eval
from ssl_robustbench.results import read_table
from ssl_robustbench.results.store import build_leaderboard, load_store
from ssl_robustbench.zoo.download import cache_root


@pytest.fixture(scope="module")
def demo(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for model in ("embedded-simclr-tinyresnet", "embedded-random-tinyresnet"):
        result = CliRunner().invoke(main, ["eval", "--model", model, "--out", str(out / model), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        runs[model] = (out / model, result.output)
    return runs


def test_run_directory_holds_provenance_results_and_plot(demo):
    run_dir, output = demo["embedded-simclr-tinyresnet"]
    for name in ("config.yaml", "environment.json", "model.json", "probe.safetensors", "results.csv",
                 "results.parquet", "results.json", "accuracy.png"):
        assert (run_dir / name).is_file(), name
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    model = json.loads((run_dir / "model.json").read_text())
    assert cfg["model"] == "embedded-simclr-tinyresnet" and len(cfg["config_hash"]) == 16
    assert env["torch"] == torch.__version__ and "device" in env and "git_commit" in env
    assert model["load_report"]["missing"] == [] and len(model["checkpoint_sha256"]) == 64
    rows = read_table(run_dir / "results.parquet")
    assert [(r.suite, r.condition, r.metric, r.n) for r in rows] == [("clean", "clean", "top1", 2000)]
    protocol = json.loads((run_dir / "protocol.json").read_text())
    assert rows[0].config_hash == protocol["suites"]["clean"] and rows[0].probe_id != "external"
    assert "top1" in output and "clean" in output  # the rich summary table


def top1(run_dir):
    return read_table(run_dir / "results.csv")[0].value


def test_ssl_network_clearly_beats_a_random_network(demo):
    ssl, rand = top1(demo["embedded-simclr-tinyresnet"][0]), top1(demo["embedded-random-tinyresnet"][0])
    assert ssl >= rand + 0.15, (ssl, rand)
    assert rand > 0.12  # above chance: the probe works on random features too


def test_both_models_share_the_protocol_and_land_on_one_leaderboard(demo, tmp_path):
    ssl_row = read_table(demo["embedded-simclr-tinyresnet"][0] / "results.csv")[0]
    rand_row = read_table(demo["embedded-random-tinyresnet"][0] / "results.csv")[0]
    assert ssl_row.config_hash == rand_row.config_hash
    store = tmp_path / "store"
    for model in demo:
        result = CliRunner().invoke(main, ["submit", str(demo[model][0]), "--to", str(store)])
        assert result.exit_code == 0, result.output
    cards, errors = load_store(store)
    assert errors == [] and len(cards) == 2 and len({c.protocol.config_hash for c in cards}) == 1
    board = (store / "LEADERBOARD.md").read_text().splitlines()
    lines = [ln for ln in board if ln.startswith("| self-reported ")]  # one board, nobody verified them yet
    assert "embedded-simclr-tinyresnet" in lines[0] and "embedded-random-tinyresnet" in lines[1]
    from cardfactory import attest, trust

    trust(store)
    for card in cards:  # an operator signs both verifications: ranked, best first
        attest(store, json.loads((store / "cards" / card.filename).read_text()))
    build_leaderboard(store)
    board = (store / "LEADERBOARD.md").read_text().splitlines()
    lines = [ln for ln in board if ln.startswith("| 1 ") or ln.startswith("| 2 ")]
    assert "embedded-simclr-tinyresnet" in lines[0] and "embedded-random-tinyresnet" in lines[1]


def test_rerun_resumes_from_saved_probe_and_rows(demo):
    run_dir, _ = demo["embedded-simclr-tinyresnet"]
    before = (run_dir / "results.json").read_text()
    probe_mtime = (run_dir / "probe.safetensors").stat().st_mtime_ns
    result = CliRunner().invoke(main, ["eval", "--model", "embedded-simclr-tinyresnet", "--out", str(run_dir),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "results.json").read_text() == before
    assert (run_dir / "probe.safetensors").stat().st_mtime_ns == probe_mtime


def test_another_config_in_the_same_run_directory_is_refused(demo):
    run_dir, _ = demo["embedded-simclr-tinyresnet"]
    result = CliRunner().invoke(main, ["eval", "--out", str(run_dir), "--set", "probe.weight_decay=0.5"])
    assert result.exit_code == 2 and "another config" in result.output


SHIFTS = {
    "gaussian_blur": lambda x: TF.gaussian_blur(x, kernel_size=[9, 9], sigma=[2.0, 2.0]),
    "gaussian_noise": lambda x: (x + 0.15 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
                                 ).clamp(0, 1),
    "perspective": lambda x: TF.perspective(x, startpoints=[[0, 0], [63, 0], [63, 63], [0, 63]],
                                            endpoints=[[12, 8], [52, 0], [63, 63], [0, 55]]),
}


@pytest.mark.parametrize("shift", SHIFTS)
def test_shifts_lower_accuracy_measurably(demo, shift):
    run_dir, _ = demo["embedded-simclr-tinyresnet"]
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    recorded.pop("config_hash")
    result = run_eval(build(EvalConfig, recorded), run_dir=run_dir)  # resumes: the saved probe, no new rows
    model = result.loaded.model.eval()
    ds = build_dataset("embedded", DataRequest(split="test", preprocess=result.loaded.card.preprocess,
                                               cache_dir=cache_root()))
    clean = shifted = 0
    with torch.inference_mode():
        for x, y in DataLoader(ds, batch_size=500):
            clean += int((model(x).argmax(1) == y).sum())
            shifted += int((model(SHIFTS[shift](x)).argmax(1) == y).sum())
    assert clean / len(ds) == pytest.approx(top1(run_dir), abs=1e-9)
    assert shifted / len(ds) <= clean / len(ds) - 0.03, (shift, clean, shifted)
