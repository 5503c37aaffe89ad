"""The released OOD suites (ImageNet-V2, -Sketch, -R, -A, -3DCC) on miniature trees in their released layouts:
each runs end to end through ``robustbench eval``; the 200-class sets score the 1000-way head on their 200 logits
only, as their official evaluation code does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ssl_robustbench.benchmarks.base import predictions
from ssl_robustbench.benchmarks.released_sets import class_list
from ssl_robustbench.cli import main
from ssl_robustbench.data.folders import imagenet_wnids
from ssl_robustbench.errors import UserError

R_AND_A = 6  # an ImageNet class index in both ImageNet-R's and ImageNet-A's 200
CLASSES = [1, 2, R_AND_A, 15, 500]  # 1, 2: ImageNet-R only; 15: ImageNet-A only; 500: neither


def _images(folder, n, rng, size=(40, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"img{i}.JPEG")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    rng = np.random.default_rng(0)
    wnids = imagenet_wnids()
    for c in CLASSES:
        _images(root / "imagenet" / "train" / wnids[c], 6, rng)
        _images(root / "imagenet" / "val" / wnids[c], 3, rng)
        _images(root / "sketch" / "sketch" / wnids[c], 2, rng)
        _images(root / "v2" / "imagenetv2-matched-frequency-format-val" / str(c), 2, rng)
        _images(root / "3dcc" / "near_focus" / "1" / wnids[c], 2, rng, size=(224, 224))
    for c in (1, 2, R_AND_A):
        _images(root / "imagenet-r" / wnids[c], 4, rng)
    for c in (R_AND_A, 15):
        _images(root / "imagenet-a" / wnids[c], 5, rng)
    return root


def _eval(trees, out, *extra):
    args = ["eval", "--data", "imagenet", "--data-root", str(trees / "imagenet"), "--device", "cpu",
            "--out", str(out), *extra]
    return CliRunner().invoke(main, args)


def test_every_released_suite_runs_end_to_end(trees, tmp_path):
    import json

    result = _eval(trees, tmp_path / "run", "--suite", "clean,v2,sketch,r,a,3dcc",
                   "--v2-root", str(trees / "v2"), "--sketch-root", str(trees / "sketch"),
                   "--r-root", str(trees / "imagenet-r"), "--a-root", str(trees / "imagenet-a"),
                   "--3dcc-root", str(trees / "3dcc"), "--set", "3dcc.corruptions=[near_focus]",
                   "--set", "3dcc.severities=[1]", "--set", "3dcc.images=all")
    assert result.exit_code == 0, result.output
    rows = {(r["suite"], r["condition"], r["metric"]): r for r in json.loads((tmp_path / "run" / "results.json")
                                                                             .read_text())}
    n = {key: row["n"] for key, row in rows.items() if key[2] == "top1"}
    assert n["clean", "clean", "top1"] == 15
    assert n["v2", "v2:matched-frequency", "top1"] == 10 and n["sketch", "sketch:sketches", "top1"] == 10
    assert n["3dcc", "3dcc:near_focus", "top1"] == 10
    # the 200-class sets: their renditions, and the clean val images of their classes only
    assert n["r", "r:renditions", "top1"] == 12 and n["r", "clean", "top1"] == 9
    assert n["a", "a:natural-adversarial", "top1"] == 10 and n["a", "clean", "top1"] == 6
    for suite in ("v2", "sketch", "r", "a", "3dcc"):
        mean, drop = rows[suite, f"{suite}:all", "mean_top1"]["value"], rows[suite, f"{suite}:all", "drop"]["value"]
        assert drop == pytest.approx(rows[suite, "clean", "top1"]["value"] - mean)
        card = json.loads((tmp_path / "run" / "cards" / f"{suite}.json").read_text())
        assert card["suite"] == suite and card["aggregates"]["mean_top1"] == pytest.approx(mean)


def test_the_200_class_sets_score_only_their_logits():
    # a stub whose best logit overall is class 0 (in neither set); among ImageNet-R's 200 it is class 2
    class Stub(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(len(x), 1000)
            logits[:, 0], logits[:, 2], logits[:, 1] = 9.0, 5.0, 4.0
            return logits

    loader = [(torch.zeros(3, 3, 8, 8), torch.tensor([2, 2, 1]))]
    everything, _ = predictions(Stub(), loader, device=torch.device("cpu"), on_batch=lambda: None)
    masked, labels = predictions(Stub(), loader, device=torch.device("cpu"), on_batch=lambda: None,
                                 classes=class_list("imagenet-r"))
    assert everything.tolist() == [0, 0, 0] and masked.tolist() == [2, 2, 2] and labels.tolist() == [2, 2, 1]


def test_class_lists_are_the_released_200():
    for name in ("imagenet-r", "imagenet-a"):
        classes = class_list(name)
        assert len(classes) == len(set(classes)) == 200 and classes == sorted(classes) and 0 <= min(classes)
    assert class_list("imagenet-a")[:3] == [6, 11, 13] and class_list("imagenet-r")[:3] == [1, 2, 4]


@pytest.mark.parametrize("args, message", [
    (["--suite", "r"], "reads the released ImageNet-R tree: set --r-root"),
    (["--suite", "r", "--r-root", "/nonexistent"], "ImageNet-R root not found"),
    (["--suite", "a", "--a-root", "TREES/imagenet-r"], "not one of ImageNet-A's 200 classes"),
    (["--suite", "v2", "--v2-root", "TREES/v2", "--set", "v2.variants=[top-images]"], "ImageNet-V2 folder not found"),
    (["--suite", "v2", "--v2-root", "TREES/v2", "--set", "v2.variants=[newest]"], "v2.variants must be some of"),
    (["--suite", "r", "--r-root", "TREES/imagenet-r", "--set", "r.limit=0"], "config key 'r.limit' must be ≥ 1"),
])
def test_bad_released_trees_are_one_clear_error(trees, tmp_path, args, message):
    args = [a.replace("TREES", str(trees)) for a in args]
    result = _eval(trees, tmp_path / "run", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_released_suites_need_an_imagenet_head(trees, tmp_path):
    result = CliRunner().invoke(main, ["eval", "--suite", "sketch", "--sketch-root", str(trees / "sketch"),
                                       "--device", "cpu", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "needs an ImageNet-1k head (--data imagenet)" in result.output


def test_a_partial_tree_is_another_protocol(trees, tmp_path):
    import shutil

    from ssl_robustbench.benchmarks.base import protocol_hash
    from ssl_robustbench.config import build
    from ssl_robustbench.eval_config import EvalConfig

    partial = tmp_path / "imagenet-r"
    shutil.copytree(trees / "imagenet-r", partial)
    next(next(partial.iterdir()).iterdir()).unlink()  # one rendition fewer

    def digest(root):
        cfg = build(EvalConfig, {"data": {"name": "imagenet", "root": str(trees / "imagenet")}, "suites": ["r"],
                                 "r": {"root": str(root)}})
        return protocol_hash(cfg, "r", eval_data={}, train_data={})

    assert digest(trees / "imagenet-r") != digest(partial)
    assert digest(trees / "imagenet-r") == digest(shutil.copytree(trees / "imagenet-r", tmp_path / "copy"))


def test_verify_reruns_a_released_set_card_given_its_tree(trees, tmp_path):
    import shutil

    run = tmp_path / "run"
    result = _eval(trees, run, "--suite", "r", "--r-root", str(trees / "imagenet-r"))
    assert result.exit_code == 0, result.output
    card = str(run / "cards" / "r.json")
    common = ["verify", card, "--data-root", str(trees / "imagenet"), "--device", "cpu", "--images", "8"]
    asked = CliRunner().invoke(main, common)
    assert "--set r.root=PATH" in asked.output, asked.output
    ok = CliRunner().invoke(main, [*common, "--set", f"r.root={trees / 'imagenet-r'}"])
    assert ok.exit_code == 0 and "verified" in ok.output and "cannot" not in ok.output, ok.output
    other = shutil.copytree(trees / "imagenet-r", tmp_path / "other")
    next(next(other.iterdir()).iterdir()).unlink()
    refused = CliRunner().invoke(main, [*common, "--set", f"r.root={other}"])
    assert "is not the card's" in refused.output, refused.output


def test_a_link_loop_in_a_released_tree_is_one_clear_error(trees, tmp_path):
    import shutil

    loop = shutil.copytree(trees / "imagenet-a", tmp_path / "imagenet-a")
    (next(loop.iterdir()) / "again").symlink_to(loop, target_is_directory=True)
    result = _eval(trees, tmp_path / "run", "--suite", "a", "--a-root", str(loop))
    assert result.exit_code == 2 and "reached twice" in result.output, result.output


def test_a_released_tree_larger_than_the_evaluation_set_writes_its_card(trees, tmp_path):
    import json

    from ssl_robustbench.results.card import load_card_json

    # 10 sketches against a val set limited to 4 images: the card's image set is the tree's, not val's
    result = _eval(trees, tmp_path / "run", "--suite", "sketch", "--sketch-root", str(trees / "sketch"),
                   "--set", "data.eval_limit=4")
    assert result.exit_code == 0, result.output
    card = load_card_json(tmp_path / "run" / "cards" / "sketch.json")
    assert card.protocol.subset_size == 10 and card.protocol.eval_data["n"] == 4
    assert json.loads((tmp_path / "run" / "cards" / "sketch.json").read_text())["protocol"]["images"]["n"] == 14


def _context(cfg_dict, tmp_path):
    from ssl_robustbench.benchmarks.base import EvalContext
    from ssl_robustbench.config import build
    from ssl_robustbench.eval_config import EvalConfig

    cfg = build(EvalConfig, {"model": "embedded-simclr-tinyresnet", "data": {"name": "imagenet"}, **cfg_dict})
    return EvalContext(model=None, clean=None, train=None, num_classes=1000, input_size=64, cfg=cfg,
                       device=torch.device("cpu"), run_dir=tmp_path)


#: suite → (the folder of one class in its released layout, the condition, the reference input): R, A, Sketch and V2
#: as their official scripts read images (trn.Resize(256) + trn.CenterCrop(224), PIL bilinear), 3DCC as RobustBench
#: does (PREPROCESSINGS['Res224'])
OFFICIAL = {
    "v2": ("imagenetv2-matched-frequency-format-val/6", ("v2:matched-frequency", 0, {"variant": "matched-frequency"}),
           "res256crop224"),
    "sketch": ("sketch/WNID", ("sketch:sketches", 0, {}), "res256crop224"),
    "r": ("WNID", ("r:renditions", 0, {}), "res256crop224"),
    "a": ("WNID", ("a:natural-adversarial", 0, {}), "res256crop224"),
    "3dcc": ("near_focus/1/WNID", ("3dcc:near_focus", 1, {"corruption": "near_focus"}), "res224"),
}


@pytest.mark.parametrize("suite", sorted(OFFICIAL))
def test_a_224_image_gets_each_suites_official_input(suite, tmp_path):
    """224² images too: a 224² image is resized to 256 and cropped where the official script does that, not only
    cropped; then the model's crop (64² here)."""
    import torchvision.transforms as trn

    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.base import Condition

    folder, (key, severity, params), reference = OFFICIAL[suite]
    _images(tmp_path / suite / folder.replace("WNID", imagenet_wnids()[R_AND_A]), 1, np.random.default_rng(1),
            size=(224, 224))
    ctx = _context({suite: {"root": str(tmp_path / suite), **({"images": "all"} if suite == "3dcc" else {})}},
                   tmp_path)
    bench, cond = BENCHMARKS.get(suite)(), Condition(key, severity, params)
    images = bench.dataset(cond, ctx)
    path, _ = images.samples[0]
    official = (trn.Compose([trn.Resize(256), trn.CenterCrop(224), trn.PILToTensor()]) if reference == "res256crop224"
                else trn.Compose([trn.Resize([224, 224]), trn.PILToTensor()]))(Image.open(path).convert("RGB"))
    ours = images[0][0]  # then the model's center crop, per image
    assert Image.open(path).size == (224, 224) and ours.shape == (3, 64, 64)
    assert torch.equal(ours, official[:, 80:144, 80:144])


def test_3dcc_reads_robustbenchs_5000_images_in_its_order(tmp_path, monkeypatch):
    from ssl_robustbench.benchmarks import BENCHMARKS, imagenet_3dcc
    from ssl_robustbench.benchmarks.base import Condition

    ids = imagenet_3dcc.robustbench_image_ids()
    assert len(ids) == 5000 and len(set(ids)) == 5000
    assert ids[:2] == ["n09468604/ILSVRC2012_val_00015253.JPEG", "n02823750/ILSVRC2012_val_00020685.JPEG"]
    assert imagenet_3dcc.CORRUPTIONS_3D == ("near_focus", "far_focus", "bit_error", "color_quant", "flash", "fog_3d",
                                            "h265_abr", "h265_crf", "iso_noise", "low_light", "xy_motion_blur",
                                            "z_motion_blur")  # robustbench/data.py CORRUPTIONS_3DCC
    listed = ids[:3]
    tree = tmp_path / "3dcc" / "fog_3d" / "2"
    rng = np.random.default_rng(0)
    for name in [*listed, "n01440764/not_listed.JPEG"]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(tree / name)
    monkeypatch.setattr(imagenet_3dcc, "robustbench_image_ids", lambda: listed)
    cond = Condition("3dcc:fog_3d", 2, {"corruption": "fog_3d"})
    bench = BENCHMARKS.get("3dcc")()
    ctx = _context({"3dcc": {"root": str(tmp_path / "3dcc")}}, tmp_path)
    images = bench.dataset(cond, ctx)
    assert [images.dataset.samples[i][0] for i in images.indices] == [str(tree / n) for n in listed]  # its order
    assert len(bench.dataset(cond, _context({"3dcc": {"root": str(tmp_path / "3dcc"), "images": "all"}},
                                            tmp_path))) == 4
    monkeypatch.setattr(imagenet_3dcc, "robustbench_image_ids", lambda: [*listed, "n01440764/missing.JPEG"])
    with pytest.raises(UserError, match="lacks 1 of RobustBench's 5,000 images"):
        bench.dataset(cond, ctx)
