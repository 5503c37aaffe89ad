"""The distribution-shift suites c (ImageNet-C), pd (ImageNet-PD) and e (ImageNet-E) on the embedded default and on
released-layout trees written by ``robustbench generate`` into tmp dirs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ssl_robustbench.benchmarks.base import CLEAN, Condition
from ssl_robustbench.benchmarks.corruption_metrics import corruption_metrics
from ssl_robustbench.benchmarks.corruptions import CorruptionBenchmark
from ssl_robustbench.benchmarks.perspective import VIEWS, perspective_view
from ssl_robustbench.cli import main
from ssl_robustbench.config import build
from ssl_robustbench.errors import UserError
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.evaluation import run_eval
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS

N = 60


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _suffixes(*folders):
    """The extensions of the image files under ``folders``."""
    return {p.suffix for f in folders for p in f.rglob("*") if p.is_file() and not p.name.startswith(".")}


def evaluate(tmp_path, name, **sections):
    cfg = build(EvalConfig, {"suites": list(sections.pop("suites")), "run": {"device": "cpu", "batch_size": 32},
                             **sections})
    rows = run_eval(cfg, run_dir=tmp_path / name).rows
    return {(r.suite, r.condition, r.severity, r.metric): r.value for r in rows}


def test_generated_c_tree_evaluates_like_on_the_fly(tmp_path):
    root = tmp_path / "c"
    cli("generate", "c", "--out", root, "--limit", N, "--corruption", "contrast", "--corruption", "gaussian_noise",
        "--severity", 2, "--batch-size", 32, "--device", "cpu")
    assert sorted(p.name for p in (root / "contrast" / "2").iterdir() if p.is_dir()) == sorted(
        ["arrow", "bolt", "circle", "crescent", "cross", "heart", "ring", "square", "star", "triangle"])
    # 64-px images: the cifar table, whose release (CIFAR-10-C) stores raw arrays: lossless PNG files
    assert _suffixes(root / "contrast" / "2") == {".png"}
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["table"] == "cifar" and manifest["jpeg_quality"] is None and manifest["reference"] == "hendrycks"
    assert manifest["source"]["size"] == 64 and manifest["encoding"] == "PNG"
    c = {"corruptions": ["contrast", "gaussian_noise"], "severities": [2], "limit": N}
    fly = evaluate(tmp_path, "fly", suites=["c"], c=c)
    tree = evaluate(tmp_path, "tree", suites=["c"], c=c | {"root": str(root)})
    assert fly["c", "clean", 0, "top1"] == tree["c", "clean", 0, "top1"]
    # deterministic corruption: the same pixels either way; noise: the same distribution, other draws per image
    assert fly["c", "c:contrast", 2, "top1"] == tree["c", "c:contrast", 2, "top1"]
    assert abs(fly["c", "c:gaussian_noise", 2, "top1"] - tree["c", "c:gaussian_noise", 2, "top1"]) < 0.15
    mean = (tree["c", "c:contrast", 2, "top1"] + tree["c", "c:gaussian_noise", 2, "top1"]) / 2
    assert tree["c", "c:all", 0, "mean_top1"] == pytest.approx(mean)
    assert tree["c", "c:all", 0, "mean_error"] == pytest.approx(1 - mean)
    assert not any(k[3] == "mce_alexnet" for k in tree), "no AlexNet baseline for a 10-class dataset"
    # the grouped layout (<group>/<corruption>/<severity>) reads the same
    grouped = tmp_path / "grouped"
    shutil.copytree(root / "contrast", grouped / "digital" / "contrast")
    shutil.copytree(root / "gaussian_noise", grouped / "noise" / "gaussian_noise")
    again = evaluate(tmp_path, "grouped", suites=["c"], c=c | {"root": str(grouped)})
    assert again["c", "c:contrast", 2, "top1"] == tree["c", "c:contrast", 2, "top1"]


def test_c_tree_on_the_imagenet_table_is_the_released_jpeg(tmp_path):
    root = tmp_path / "c"
    args = ["generate", "c", "--out", root, "--limit", N, "--corruption", "contrast", "--severity", 3,
            "--table", "imagenet", "--batch-size", 32, "--device", "cpu"]
    cli(*args)
    assert _suffixes(root / "contrast" / "3") == {".JPEG"}
    assert json.loads((root / "manifest.json").read_text())["jpeg_quality"] == 85
    c = {"corruptions": ["contrast"], "severities": [3], "limit": N, "table": "imagenet"}
    fly = evaluate(tmp_path, "fly", suites=["c"], c=c)  # faithful by default: the same JPEG-85 pixels
    tree = evaluate(tmp_path, "tree", suites=["c"], c=c | {"root": str(root)})
    assert fly["c", "c:contrast", 3, "top1"] == tree["c", "c:contrast", 3, "top1"]
    # resuming into the tree with other settings would mix two protocols under one manifest
    result = CliRunner().invoke(main, [str(a) for a in args + ["--reference", "imagecorruptions"]])
    assert result.exit_code != 0 and "generated with other settings (reference differ)" in result.output


def test_c_without_the_jpeg_step_is_another_protocol(tmp_path):
    from ssl_robustbench.benchmarks.base import protocol_hash

    def cfg(**c):
        return build(EvalConfig, {"suites": ["c"], "c": {"table": "imagenet", **c}})

    hashes = {protocol_hash(cfg(**c), "c", eval_data={}, train_data={})
              for c in ({}, {"faithful": False}, {"reference": "imagecorruptions"})}
    assert len(hashes) == 3
    engine = CorruptionBenchmark().card_details(cfg(faithful=False), None)["engine"]
    assert "without the released JPEG step (not the released protocol)" in engine and "hendrycks" in engine
    assert "JPEG 85 as released" in CorruptionBenchmark().card_details(cfg(), None)["engine"]
    with pytest.raises(UserError, match="reference must be hendrycks or imagecorruptions"):
        cfg(reference="wand")


def test_c_severity_lowers_accuracy_on_the_embedded_default(tmp_path):
    c = {"corruptions": ["gaussian_noise", "contrast"], "severities": [1, 5], "limit": 300}
    got = evaluate(tmp_path, "sev", suites=["c"], c=c)
    for name in c["corruptions"]:
        assert got["c", f"c:{name}", 5, "top1"] < got["c", f"c:{name}", 1, "top1"] - 0.03, name
        assert got["c", f"c:{name}", 5, "top1"] < got["c", "clean", 0, "top1"] - 0.05, name


def test_mce_rows_only_where_the_alexnet_baseline_exists():
    from ssl_robustbench.data.folders import imagenet_wnids
    from ssl_robustbench.fileio import stable_hash

    val = {"kind": "CheckedImageFolder", "n": 50000, "classes": stable_hash(imagenet_wnids()), "num_classes": 1000,
           "imagenet_split": "val"}
    sub = {"subset_of": val, "n": 5000, "indices": "x"}
    folder20 = {"kind": "CheckedImageFolder", "n": 20, "classes": stable_hash(["a", "b"]), "num_classes": 2}
    some_classes = val | {"classes_present": 100}  # 100 wnid folders: not the benchmark's 1000 classes
    train = val | {"imagenet_split": "train"}
    rng = np.random.default_rng(0)
    values = {(c, s): float(rng.uniform(0.2, 0.7)) for c in BENCHMARK_CORRUPTIONS for s in range(1, 6)}
    top1 = {Condition(f"c:{c}", s, {"corruption": c}): v for (c, s), v in values.items()}
    top1[CLEAN] = 0.76
    rows = {(m.condition, m.metric): m.value for m in CorruptionBenchmark().summarize(top1, n=100, data=sub)}
    expected = corruption_metrics(values, clean=0.76, baseline_clean=1 - 0.43478)
    assert rows["c:all", "mce_alexnet"] == pytest.approx(expected["mce"])
    assert rows["c:all", "relative_mce_alexnet"] == pytest.approx(expected["relative_mce"])
    assert rows["c:fog", "ce_alexnet"] == pytest.approx(expected["ce:fog"])
    for other in (folder20, some_classes, train, {}):
        small = {(m.condition, m.metric) for m in CorruptionBenchmark().summarize(top1, n=100, data=other)}
        assert ("c:all", "mean_error") in small and ("c:all", "mce_alexnet") not in small, other
    partial = dict(list(top1.items())[:20])  # not the full 15 × 5 set: no mCE even on ImageNet
    assert ("c:all", "mce_alexnet") not in {(m.condition, m.metric)
                                            for m in CorruptionBenchmark().summarize(partial, n=100, data=val)}


@pytest.mark.parametrize("background", ["black", "padded"])
def test_pd_views_match_the_authors_package(background):
    reference = pytest.importorskip("mobius_mpd.torch_transform")
    imgs = np.random.default_rng(1).integers(0, 256, (1, 40, 56, 3), dtype=np.uint8)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    for view in VIEWS:
        ours = perspective_view(x, view, background, magnitude=0.3, d=1.0)
        ours = (ours * 255).round()[0].permute(1, 2, 0).numpy().astype(int)
        t = reference.MobiusMPDTransform(p=1.0, min=0.3, max=0.3, view_mode="uni-direction", view=view,
                                         background="padded" if background == "padded" else "none")
        theirs = np.asarray(t(Image.fromarray(imgs[0])), dtype=int)
        assert np.abs(ours - theirs).max() <= 1, view


def test_pd_tree_roundtrip_and_summary(tmp_path):
    root = tmp_path / "pd"
    cli("generate", "pd", "--out", root, "--limit", N, "--device", "cpu")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert folders == ["PD-B", "PD-BI", "PD-L", "PD-LI", "PD-R", "PD-RI", "PD-T", "PD-TI"]
    fly = evaluate(tmp_path, "fly", suites=["pd"], pd={"limit": N})
    tree = evaluate(tmp_path, "tree", suites=["pd"], pd={"limit": N, "root": str(root)})
    subsets = [k for k in fly if k[3] == "top1" and k[1].startswith("pd:")]
    assert len(subsets) == 8
    for key in subsets:
        assert fly[key] == tree[key], key  # lossless PNGs of a deterministic warp
    black = [fly["pd", f"pd:{v}/black", 0, "top1"] for v in VIEWS]
    assert fly["pd", "pd:black", 0, "mean_top1"] == pytest.approx(sum(black) / 4)
    assert fly["pd", "pd:all", 0, "drop"] == pytest.approx(fly["pd", "clean", 0, "top1"]
                                                          - fly["pd", "pd:all", 0, "mean_top1"])
    assert fly["pd", "pd:black", 0, "mean_top1"] < fly["pd", "clean", 0, "top1"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["magnitude"] == 0.3 and manifest["d"] == 1.0 and manifest["encoding"] == "PNG"
    assert "224² crop" in manifest["protocol"] and manifest["views"]["PD-LI"] == "left/padded"


def test_e_tree_roundtrip_and_errors(tmp_path):
    root = tmp_path / "e"
    cli("generate", "e", "--out", root, "--limit", N)
    fly = evaluate(tmp_path, "fly", suites=["e"], e={"limit": N})
    tree = evaluate(tmp_path, "tree", suites=["e"], e={"limit": N, "root": str(root)})
    edits = ["background", "direction", "position", "size-0.6", "size-0.8"]
    assert sorted(k[1] for k in tree if k[3] == "top1") == sorted(["e:ori"] + [f"e:{s}" for s in edits])
    # one lossless encoding for every subset: the tree holds exactly the images the on-the-fly suite sees
    assert _suffixes(*(p for p in root.iterdir() if p.is_dir())) == {".png"}
    for s in ["ori", *edits]:
        assert tree["e", f"e:{s}", 0, "top1"] == fly["e", f"e:{s}", 0, "top1"], s
    for s in edits:
        assert tree["e", f"e:{s}", 0, "drop"] == pytest.approx(tree["e", "e:ori", 0, "top1"]
                                                               - tree["e", f"e:{s}", 0, "top1"])
    assert fly["e", "e:size-0.6", 0, "top1"] < fly["e", "e:ori", 0, "top1"]  # smaller objects are harder

    from ssl_robustbench.data.shift_trees import EditedImages, edit_subsets
    (root / "position" / "99999999.png").write_bytes(next((root / "position").iterdir()).read_bytes())
    with pytest.raises(UserError, match="99999999.png has no line in"):
        EditedImages(root, "position", transform=lambda im: im, classes=[str(i) for i in range(10)])
    (root / "labels.txt").write_text("00000001.JPEG\n")
    with pytest.raises(UserError, match="expected '<image name>"):
        EditedImages(root, "ori", transform=lambda im: im, classes=[str(i) for i in range(10)])
    shutil.rmtree(root / "ori")
    with pytest.raises(UserError, match="no ori/ folder"):
        edit_subsets(root)


def test_shift_suite_settings_fail_before_any_work(tmp_path):
    for args, message in [
        (["--suite", "c", "--set", "c.corruptions=[fgo]"], "unknown corruption 'fgo'"),
        (["--suite", "c", "--set", "c.severities=[7]"], "severity must be 1–5"),
        (["--suite", "c", "--c-root", tmp_path / "missing"], "ImageNet-C root not found"),
        (["--suite", "pd", "--set", "pd.views=[up]"], "unknown pd view or background 'up'"),
        (["--suite", "e", "--data", "cifar10", "--data-root", tmp_path], "suite e needs e.root"),
    ]:
        result = CliRunner().invoke(main, ["eval", "--out", str(tmp_path / "run"), *map(str, args)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "run").exists()


def test_imagenet_e_references_are_not_edits():
    from ssl_robustbench.benchmarks.edits import EditBenchmark

    top1 = {Condition(f"e:{s}", 0, {"subset": s}): v
            for s, v in (("ori", 0.8), ("full", 0.9), ("background", 0.5), ("size", 0.6))}
    rows = {(m.condition, m.metric): m.value for m in EditBenchmark().summarize(top1, n=100, data={})}
    assert rows["e:all", "mean_top1"] == pytest.approx(0.55) and rows["e:all", "drop"] == pytest.approx(0.25)
    assert ("e:full", "drop") not in rows and rows["e:size", "drop"] == pytest.approx(0.2)
