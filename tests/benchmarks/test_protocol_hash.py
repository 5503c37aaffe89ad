"""The protocol hash is portable: data by identity (never its path), per suite (other suites in the same eval do
not count), and it moves when what was measured moves."""

import json
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from ssl_robustbench.cli import main
from ssl_robustbench.data import DataRequest, build_dataset, dataset_identity
from ssl_robustbench.preprocess import Preprocess

FAST = ["--set", "data.train_limit=200", "--set", "data.eval_limit=100", "--device", "cpu"]


def tree(root, per_class=3):
    for split in ("train", "test"):
        for c, colour in enumerate(["red", "green", "blue"]):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (64, 64), colour).save(folder / f"{i}.png")
    return root


def identity(root, split="test"):
    req = DataRequest(split=split, preprocess=Preprocess(input_size=64, crop_pct=1.0), root=root)
    return dataset_identity(build_dataset("imagefolder", req))


def test_identity_is_the_file_list_not_the_path(tmp_path):
    a = tree(tmp_path / "a")
    b = tmp_path / "mnt" / "ssd" / "copy"
    shutil.copytree(a, b)
    assert identity(a) == identity(b)
    (b / "test" / "class1" / "2.png").unlink()
    assert identity(a) != identity(b)
    assert identity(a)["n"] == 9 and identity(a)["num_classes"] == 3


def eval_hashes(out, *args):
    result = CliRunner().invoke(main, ["eval", "--model", "embedded-random-tinyresnet", "--out", str(out), *FAST,
                                       *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "protocol.json").read_text())["suites"]


def test_a_suite_hashes_alike_whatever_else_ran(tmp_path):
    alone = eval_hashes(tmp_path / "alone")
    together = eval_hashes(tmp_path / "together", "--suite", "clean,pd", "--n-shift", "20")
    assert alone["clean"] == together["clean"] and together["pd"] != together["clean"]
    other_recipe = eval_hashes(tmp_path / "wd", "--set", "probe.weight_decay=1e-3")
    assert other_recipe["clean"] != alone["clean"]
    other_pd = eval_hashes(tmp_path / "pd2", "--suite", "pd", "--n-shift", "20", "--set", "pd.magnitude=0.2")
    assert other_pd["pd"] != together["pd"]


@pytest.mark.parametrize("execution", [[], ["--batch-size", "64"]])  # how it runs does not count
def test_two_roots_of_one_dataset_give_one_protocol(tmp_path, execution):
    a = tree(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    common = ["--data", "imagefolder", "--set", "data.eval_split=test", *execution]
    ha = eval_hashes(tmp_path / "ra", "--data-root", a, *common)
    hb = eval_hashes(tmp_path / "rb", "--data-root", b, *common)
    assert ha == hb


def test_a_finetune_recipe_file_counts_in_the_adversarial_hash(tmp_path, monkeypatch):
    """SLF/ALF/AFF read their recipe from a YAML file: editing that file (not only choosing another protocol)
    changes the adversarial suite's protocol."""
    import ssl_robustbench.benchmarks.adversarial_finetune as aft
    from ssl_robustbench.benchmarks.base import protocol_hash
    from ssl_robustbench.config import build
    from ssl_robustbench.eval_config import EvalConfig

    cfg = build(EvalConfig, {"suites": ["adversarial"]})
    data = {"kind": "x"}
    before = protocol_hash(cfg, "adversarial", eval_data=data, train_data=data)
    edited = tmp_path / "adversarial"
    shutil.copytree(aft.recipe_dir(), edited)
    text = (edited / "slf.yaml").read_text().replace("crop_pad: 4", "crop_pad: 2")
    (edited / "slf.yaml").write_text(text)
    monkeypatch.setattr(aft, "recipe_dir", lambda: edited)
    assert protocol_hash(cfg, "adversarial", eval_data=data, train_data=data) != before
    assert protocol_hash(cfg, "clean", eval_data=data, train_data=data) == protocol_hash(
        build(EvalConfig, {}), "clean", eval_data=data, train_data=data)


def test_a_stretched_finetune_recipe_is_another_protocol_with_its_own_head_label():
    """adv.epoch_scale k: epochs and lr milestones × k (k × the steps, same schedule shape); its rows never share a
    protocol with the published recipe's, and the head says so."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.adversarial_finetune import load_recipe
    from ssl_robustbench.benchmarks.base import protocol_hash
    from ssl_robustbench.config import build
    from ssl_robustbench.errors import UserError
    from ssl_robustbench.eval_config import EvalConfig

    published = load_recipe("slf")
    stretched = load_recipe("slf", scale=10)
    assert (published.epochs, published.milestones) == (25, (10, 20))  # ACL / ASTrA test_LF.py
    assert (stretched.epochs, stretched.milestones) == (250, (100, 200))
    assert {**vars(stretched), "epochs": 25, "milestones": (10, 20)} == vars(published)  # lr, batch, crops: as is
    assert load_recipe("slf", scale=10, epochs=2).epochs == 2  # a test's scaled-down run still wins
    data = {"kind": "x"}
    cfgs = [build(EvalConfig, {"suites": ["adversarial"], "adv": {"epoch_scale": k}}) for k in (1, 10)]
    hashes = [protocol_hash(c, "adversarial", eval_data=data, train_data=data) for c in cfgs]
    assert hashes[0] != hashes[1]
    heads = [BENCHMARKS.get("adversarial")().head(c) for c in cfgs]
    assert [h["kind"] for h in heads] == ["slf", "slf x10 epochs"] and heads[1]["recipe"]["epochs"] == 250
    for bad in (0, -3):
        with pytest.raises(UserError, match="epoch_scale"):
            build(EvalConfig, {"adv": {"epoch_scale": bad}})
