"""The CLI: --help everywhere, zoo commands, and each expected mistake as one clear line with exit status 2."""

from __future__ import annotations

import hashlib
import http.server
import threading

import click
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import ssl_robustbench
from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.cli import main
from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.probes.linear import fit_linear_probe, save_probe

FAST = ["--set", "data.train_limit=100", "--set", "data.eval_limit=50", "--device", "cpu"]
def _command_paths(group, prefix=()):
    """Every command and group of the Click tree (so a new subcommand is covered without editing this list), found
    through Click's own list_commands / get_command (the top-level group loads its subcommands lazily)."""
    yield list(prefix)
    if isinstance(group, click.Group):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            yield from _command_paths(group.get_command(ctx, name), (*prefix, name))


COMMANDS = list(_command_paths(main))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and ssl_robustbench.__version__ in result.output


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help_with_an_example(cmd):
    result = run(*cmd, "--help")
    assert result.exit_code == 0 and "Example" in result.output and "robustbench" in result.output


def test_pretrain_help_names_every_registered_method_and_every_self_at_one_under_strategy():
    import re

    from ssl_robustbench.methods import METHODS
    from ssl_robustbench.methods.self_at import SelfAT

    named = {p.name: set(re.findall(r"[a-z0-9+]+", p.help))
             for p in main.get_command(click.Context(main), "pretrain").params}
    self_at = {m for m in METHODS.names() if issubclass(METHODS.get(m), SelfAT)}
    assert {"acl", "advcl", "dynacl++"} <= self_at
    assert set(METHODS.names()) <= named["method"]
    assert self_at <= named["strategy"]


def test_zoo_list_and_show():
    listing = run("zoo", "list")
    assert listing.exit_code == 0 and "embedded-simclr-tinyr" in listing.output and "dino-vits16" in listing.output
    shown = run("zoo", "show", "mocov2-rn50-800ep")
    card = yaml.safe_load(shown.output)
    assert card["strip_prefixes"] == ["module.encoder_q."] and card["source"]["url"].startswith("https://")
    assert_user_error(run("zoo", "show", "mocov2-rn50-80ep"), "did you mean mocov2-rn50-800ep")


def test_unknown_model_and_missing_paths(tmp_path):
    assert_user_error(run("eval", "--model", "embedded-simclr", "--out", tmp_path / "r"), "did you mean")
    assert_user_error(run("eval", "--model", tmp_path / "nope.pth", "--arch", "tiny_resnet"), "checkpoint not found")
    assert_user_error(run("eval", "--model", tmp_path / "nope.yaml"), "card file not found")
    assert_user_error(run("eval", "--data", "imagefolder", "--data-root", tmp_path / "none", "--out", tmp_path / "r2"),
                      "data root not found")
    assert_user_error(run("eval", "--config", tmp_path / "c.yaml"), "config file not found")
    assert_user_error(run("eval", "--suite", "clen"), "did you mean clean")


def test_checkpoint_whose_keys_do_not_fit(tmp_path):
    path = tmp_path / "r18.safetensors"
    save_file(build_backbone("torchvision/resnet18").state_dict(), str(path))
    result = run("eval", "--model", path, "--arch", "tiny_resnet", "--out", tmp_path / "r")
    assert_user_error(result, "checkpoint keys do not fit the arch")
    assert "layer1.0.conv1.weight" in result.output or "stem.0.weight" in result.output
    assert_user_error(run("eval", "--model", path), "needs --arch")


def test_probe_class_count_mismatch(tmp_path):
    probe = fit_linear_probe(torch.randn(50, 192), torch.arange(50) % 5, num_classes=5, cfg=ProbeConfig())
    save_probe(tmp_path / "p.safetensors", probe)
    result = run("eval", "--model", "embedded-random-tinyresnet", "--probe", tmp_path / "p.safetensors",
                 "--out", tmp_path / "r", *FAST)
    assert_user_error(result, "has 5 classes but the dataset has 10")


def _folder(root, *, corrupt=False, empty=False):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            d = root / split / cls
            d.mkdir(parents=True)
            if empty and cls == "b":
                continue
            for i in range(3):
                arr = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    if corrupt:
        (root / "train" / "a" / "1.png").write_bytes(b"\x89PNG broken")


def test_corrupt_image_and_empty_class_folder(tmp_path):
    _folder(tmp_path / "bad", corrupt=True)
    result = run("eval", "--model", "embedded-random-tinyresnet", "--data", "imagefolder",
                 "--data-root", tmp_path / "bad", "--out", tmp_path / "r1", "--device", "cpu")
    assert_user_error(result, "cannot read image")
    assert "1.png" in result.output
    _folder(tmp_path / "empty", empty=True)
    result = run("eval", "--model", "embedded-random-tinyresnet", "--data", "imagefolder",
                 "--data-root", tmp_path / "empty", "--out", tmp_path / "r2", "--device", "cpu")
    assert_user_error(result, "holds no image files")


def test_imagefolder_eval_works(tmp_path):
    _folder(tmp_path / "ok")
    result = run("eval", "--model", "embedded-random-tinyresnet", "--data", "imagefolder",
                 "--data-root", tmp_path / "ok", "--out", tmp_path / "r", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "results.csv").is_file()


def test_wrong_sha256_for_bundled_and_downloaded_weights(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file(build_backbone("tiny_resnet").state_dict(), str(weights))
    card = {"id": "t", "arch": "tiny_resnet", "method": "simclr", "paper": "p", "license": "MIT",
            "source": {"path": "w.safetensors", "sha256": "0" * 64}, "input_size": 64, "crop_pct": 1.0,
            "mean": [0.5] * 3, "std": [0.25] * 3, "interpolation": "bilinear"}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(card))
    assert_user_error(run("eval", "--model", tmp_path / "local.yaml", "--out", tmp_path / "r1"), "sha256 mismatch")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/w.safetensors"
        card["source"] = {"url": url, "sha256": "1" * 64}
        (tmp_path / "remote.yaml").write_text(yaml.safe_dump(card))
        assert_user_error(run("eval", "--model", tmp_path / "remote.yaml", "--out", tmp_path / "r2",
                              "--cache-dir", tmp_path / "cache"), "sha256 mismatch")
        card["source"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        (tmp_path / "remote.yaml").write_text(yaml.safe_dump(card))
        ok = run("eval", "--model", tmp_path / "remote.yaml", "--out", tmp_path / "r3", "--cache-dir",
                 tmp_path / "cache", *FAST)
        assert ok.exit_code == 0, ok.output
        assert (tmp_path / "cache" / "checkpoints" / "t" / "w.safetensors").is_file()
    finally:
        httpd.shutdown()
        httpd.server_close()
