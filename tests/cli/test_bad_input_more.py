"""The second bad-input table (issue 31): kinds the first table (``test_bad_input.py``) does not hold — the config
reader, options a combination would ignore, class identity of image folders, odd paths, checkpoints of the
official training scripts and broken tensors, stores and cards, full and read-only disks. Each case: exit status 2,
one ``error:`` line naming the problem or its fix, no traceback, nothing on disk changed (``check_case``). Valid
odd images (1×1, CMYK, 16-bit, palette + alpha, animated PNG, WebP) are tested to load, not to fail."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_bad_input import EVAL, Case, _good_png, _write, check_case


def _folder(tmp: Path, train: list[str], test: list[str] | None = None, extra=None) -> None:
    for split, classes in (("train", train), ("test", test if test is not None else train)):
        for c in classes:
            _good_png(tmp / "folder" / split / c / "a.png")
    for name, make in (extra or {}).items():
        make(tmp / "folder" / name)


FOLDER = [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"]


def _ckpt(tmp: Path, obj, name="c.pth") -> None:
    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, tmp / name)


def _tiny_state() -> dict:
    from ssl_robustbench.backbones import build_backbone

    return build_backbone("tiny_resnet/16-32-64-128").state_dict()


CKPT = [*EVAL, "--model", "{tmp}/c.pth", "--arch", "tiny_resnet/16-32-64-128"]


def _config(text: str):
    return lambda t: _write(t / "cfg.yaml", text)


def _store_with_card(tmp: Path, suite: str = "clean", config: str = "ab" * 8, model: str = "m-1") -> Path:
    from cardfactory import make_card, write_card

    # a fixed file name (a run directory's cards are read by path, whatever their name)
    return write_card(tmp / "store", make_card(model, suite=suite, config=config),
                      name=f"{model}__{suite}__{config[:8]}.json")


def _broken_png(path: Path) -> None:
    _good_png(path)
    data = bytearray(path.read_bytes())
    data[40:60] = b"\x00" * 20  # inside IDAT: the CRC and the zlib stream no longer hold
    path.write_bytes(bytes(data))


def _truncated_tiff(path: Path) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, "TIFF")
    _write(path, buf.getvalue()[:120])


def _png_bomb(path: Path) -> None:
    from test_bad_input import _png_header_only

    _png_header_only(path, 30000, 30000)


def _empty_zip(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/version", "3")


def _nan_safetensors(tmp: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: (v * float("nan") if v.is_floating_point() else v).contiguous() for k, v in _tiny_state().items()},
              str(tmp / "c.safetensors"))


def _prefix_file(path: Path, prefix: bytes) -> None:
    path.write_bytes(prefix + path.read_bytes())


def _relink_evidence(card: Path) -> None:
    evidence = card.parent.parent / "evidence" / f"{card.stem}.parquet"
    real = evidence.with_name("real.parquet")
    evidence.rename(real)
    evidence.symlink_to(real)



CASES = [
    # ---- the config reader
    Case("set-bool-as-int", [*EVAL, "--set", "data.eval_limit=true"], "boolean"),
    Case("set-yes-as-int", [*EVAL, "--set", "data.train_limit=yes"], "boolean"),
    Case("set-int-as-bool", [*EVAL, "--set", "c.faithful=1"], "must be bool"),
    Case("set-alias", [*EVAL, "--set", "probe.solver=*a"], "anchors and aliases"),
    Case("set-anchor", [*EVAL, "--set", "c.severities=&x [1]"], "anchors and aliases"),
    Case("set-tag-binary", [*EVAL, "--set", "probe.solver=!!binary aGVsbG8="], "tags"),
    Case("set-tag-python", [*EVAL, "--set", "probe.solver=!!python/name:os.system"], "tags"),
    Case("set-list-for-name", [*EVAL, "--set", "probe.solver=[a, b]"], "must be a string"),
    Case("config-duplicate-key", [*EVAL, "--config", "{tmp}/cfg.yaml"], "given twice",
         setup=_config("data:\n  eval_limit: 10\n  eval_limit: 2000\n")),
    Case("config-duplicate-section", [*EVAL, "--config", "{tmp}/cfg.yaml"], "given twice",
         setup=_config("probe: {}\nprobe: {}\n")),
    Case("config-yaml-bomb", [*EVAL, "--config", "{tmp}/cfg.yaml"], "anchors and aliases",
         setup=_config("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: [*b, *b, *b, *b, *b, *b, *b, *b]\n")),
    Case("config-python-tag", [*EVAL, "--config", "{tmp}/cfg.yaml"], "tags",
         setup=_config("model: !!python/object/apply:os.system ['true']\n")),
    Case("config-bool-limit", [*EVAL, "--config", "{tmp}/cfg.yaml"], "boolean",
         setup=_config("data:\n  eval_limit: on\n")),
    # ---- options a combination would ignore
    Case("suite-only-commas", [*EVAL, "--suite", ",,"], "names no suite"),
    Case("suite-blank", [*EVAL, "--suite", " , "], "names no suite"),
    Case("probe-with-label-fraction", [*EVAL, "--probe", "{tmp}/p.safetensors", "--label-fraction", "0.1"],
         "would be ignored", setup=lambda t: _write(t / "p.safetensors", b"x")),
    Case("probe-with-released-head", [*EVAL, "--probe", "{tmp}/p.safetensors", "--head", "released"],
         "would be ignored", setup=lambda t: _write(t / "p.safetensors", b"x")),
    Case("embedded-with-root", [*EVAL, "--data", "embedded", "--data-root", "{tmp}"], "embedded dataset"),
    Case("embedded-with-root-set", [*EVAL, "--set", "data.root=/data"], "embedded dataset"),
    Case("pretrain-epochs-1e20", ["pretrain", "--out", "{tmp}/run", "--set", "epochs=1e20"], "epochs"),
    Case("generate-size-huge", ["generate", "c", "--out", "{tmp}/gen", "--size", "100000"], "100000"),
    # ---- image folders: classes by name
    Case("folder-test-class-unseen", FOLDER, "'c'", setup=lambda t: _folder(t, ["a", "b"], ["a", "c"])),
    Case("folder-one-class", FOLDER, "at least 2 classes", setup=lambda t: _folder(t, ["only"])),
    Case("folder-one-class-and-hidden", FOLDER, "at least 2 classes",
         setup=lambda t: _folder(t, ["only", ".ipynb_checkpoints"], ["only"])),
    Case("folder-link-loop", FOLDER, "reached twice", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/a/loop": lambda p: p.symlink_to(p.parent)})),
    Case("folder-link-into-other-class", FOLDER, "reached twice", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/a/b-link": lambda p: p.symlink_to(p.parent.parent / "b")})),
    Case("folder-missing-eval-split", [*FOLDER, "--set", "data.eval_split=bogus"], "splits under",
         setup=lambda t: _folder(t, ["a", "b"])),
    Case("imagenet-without-val", [*EVAL, "--data", "imagenet", "--data-root", "{tmp}/in"], "splits under",
         setup=lambda t: _good_png(t / "in" / "train" / "n01440764" / "a.png")),
    Case("folder-zero-byte-jpg", FOLDER, "empty.jpg", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/a/empty.jpg": lambda p: _write(p, b"")})),
    Case("folder-text-named-jpg", FOLDER, "notes.jpg", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/b/notes.jpg": lambda p: _write(p, "just some text\n")})),
    Case("folder-html-named-png", FOLDER, "page.png", setup=lambda t: _folder(t, ["a", "b"], extra={
        "test/a/page.png": lambda p: _write(p, "<html><body>404</body></html>")})),
    # ---- paths: spaces, newlines, non-ASCII
    Case("root-with-spaces-missing", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/my data"], "my data"),
    Case("root-with-newline-missing", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/a\nb"], "a\\nb"),
    Case("root-non-ascii-missing", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/données"], "données"),
    Case("checkpoint-path-with-newline", [*EVAL, "--model", "{tmp}/x\n.pth", "--arch", "torchvision/resnet18"],
         "x\\n.pth"),
    Case("config-path-with-spaces", [*EVAL, "--config", "{tmp}/my config.yaml"], "my config.yaml"),
    # ---- checkpoints
    Case("ckpt-torchvision-classifier", [*EVAL, "--model", "{tmp}/c.pth", "--arch", "torchvision/resnet18"],
         "--ignore-keys", setup=lambda t: _ckpt(t, __import__("torchvision").models.resnet18().state_dict())),
    Case("ckpt-dino-teacher-student", CKPT, "--checkpoint-key teacher",
         setup=lambda t: _ckpt(t, {"teacher": _tiny_state(), "student": _tiny_state(), "epoch": 1})),
    Case("ckpt-vicreg-nested", CKPT, "--strip-prefix backbone.", setup=lambda t: _ckpt(t, {"epoch": 1, "model": {
        f"module.backbone.{k}": v for k, v in _tiny_state().items()}})),
    Case("ckpt-nan-weights", CKPT, "nan or infinite",
         setup=lambda t: _ckpt(t, {k: (v * float("nan") if v.is_floating_point() else v)
                                   for k, v in _tiny_state().items()})),
    Case("ckpt-inf-weights", CKPT, "nan or infinite",
         setup=lambda t: _ckpt(t, {k: (v + float("inf") if k.endswith("weight") else v)
                                   for k, v in _tiny_state().items()})),
    Case("ckpt-int-weights", CKPT, "wrong type",
         setup=lambda t: _ckpt(t, {k: v.long() for k, v in _tiny_state().items()})),
    Case("ckpt-safetensors-lying-header", [*EVAL, "--model", "{tmp}/c.safetensors", "--arch",
                                           "tiny_resnet/16-32-64-128"], "c.safetensors",
         setup=lambda t: _write(t / "c.safetensors", (10**9).to_bytes(8, "little") + b'{"a": 1}')),
    Case("ckpt-safetensors-short-header", [*EVAL, "--model", "{tmp}/c.safetensors", "--arch",
                                           "tiny_resnet/16-32-64-128"], "c.safetensors",
         setup=lambda t: _write(t / "c.safetensors", b"\x05\x00")),
    Case("ckpt-empty-dict", CKPT, "holds no tensors", setup=lambda t: _ckpt(t, {})),
    Case("ckpt-list", CKPT, "not a state dict", setup=lambda t: _ckpt(t, [torch.zeros(1)])),
    # ---- stores, cards, leaderboards
    Case("submit-to-empty", ["submit", "{tmp}/run", "--to", ""], "--to needs a store"),
    Case("submit-to-option", ["submit", "{tmp}/run", "--to", "--upload-pack=touch x"], "must not begin with '-'"),
    Case("build-missing-store", ["leaderboard", "build", "--store", "{tmp}/nowhere"], "not found"),
    Case("show-cards-is-file", ["leaderboard", "show", "--store", "{tmp}/s"], "must be a directory",
         setup=lambda t: _write(t / "s" / "cards", "not a folder")),
    Case("show-unknown-board", ["leaderboard", "show", "--store", "{tmp}/store2", "--board", "zzz"],
         "no board matches", setup=lambda t: (t / "store2").mkdir()),
    Case("build-leaderboard-is-dir", ["leaderboard", "build", "--store", "{tmp}/s"], "must be a regular file",
         setup=lambda t: (t / "s" / "LEADERBOARD.md").mkdir(parents=True)),
    Case("build-lock-is-dir", ["leaderboard", "build", "--store", "{tmp}/s"], "must be a regular file",
         setup=lambda t: (t / "s" / ".lock").mkdir(parents=True)),
    Case("verify-card-without-evidence", ["verify", "{tmp}/store/cards/m-1__clean__abababab.json"],
         "evidence file not found", setup=lambda t: _store_with_card(t).parent.parent.joinpath(
             "evidence", "m-1__clean__abababab.parquet").unlink()),
    Case("verify-schema-2-card", ["verify", "{tmp}/old.json"], "no per-image evidence",
         setup=lambda t: _write(t / "old.json", json.dumps({"schema_version": 2}))),
    Case("compare-different-boards", ["compare", "{tmp}/store/cards/m-1__clean__abababab.json",
                                      "{tmp}/store/cards/m-2__clean__cdcdcdcd.json"], "different boards",
         setup=lambda t: (_store_with_card(t), _store_with_card(t, config="cd" * 8, model="m-2"))),
    Case("submit-card-evidence-edited", ["submit", "{tmp}/store/cards/m-1__clean__abababab.json", "--to",
                                         "{tmp}/other"], "sha256 differs",
         setup=lambda t: _store_with_card(t).parent.parent.joinpath(
             "evidence", "m-1__clean__abababab.parquet").write_bytes(b"PAR1 edited")),
    # ---- more of the config reader
    Case("config-scalar", [*EVAL, "--config", "{tmp}/cfg.yaml"], "must hold a mapping", setup=_config("42\n")),
    Case("config-tab-indent", [*EVAL, "--config", "{tmp}/cfg.yaml"], "not valid yaml",
         setup=_config("data:\n\teval_limit: 10\n")),
    Case("config-section-is-list", [*EVAL, "--config", "{tmp}/cfg.yaml"], "must be a mapping",
         setup=_config("data: [1, 2]\n")),
    Case("config-number-is-mapping", [*EVAL, "--config", "{tmp}/cfg.yaml"], "eval_limit",
         setup=_config("data:\n  eval_limit: {a: 1}\n")),
    Case("config-unknown-suite-section", [*EVAL, "--config", "{tmp}/cfg.yaml"], "unknown config key",
         setup=_config("imagenet_r: {}\n")),
    Case("config-bom-and-dupe", [*EVAL, "--config", "{tmp}/cfg.yaml"], "given twice",
         setup=lambda t: _write(t / "cfg.yaml", "\ufeffseed: 1\nsuites: [clean]\nsuites: [c]\n")),
    Case("config-merge-key", [*EVAL, "--config", "{tmp}/cfg.yaml"], "anchors and aliases",
         setup=_config("base: &b {eval_limit: 5}\ndata:\n  <<: *b\n")),
    Case("set-unclosed-list", [*EVAL, "--set", "c.severities=[1, 2"], "not valid yaml"),
    Case("set-empty-key-part", [*EVAL, "--set", "data..eval_limit=5"], "unknown config key"),
    Case("set-unknown-section", [*EVAL, "--set", "nosuch.key=1"], "unknown config key"),
    Case("set-severity-six", [*EVAL, "--set", "c.severities=[1, 6]"], "severity"),
    Case("set-unknown-view", [*EVAL, "--set", "pd.views=[diagonal]"], "diagonal"),
    Case("set-label-fraction-two", [*EVAL, "--set", "label_fraction=2"], "label_fraction"),
    Case("set-bool-for-seed", [*EVAL, "--set", "run.seed=false"], "boolean"),
    Case("set-null-tag", [*EVAL, "--set", "probe.solver=!!null"], "tags"),
    Case("set-tag-in-list", [*EVAL, "--set", "c.corruptions=[!!str fog]"], "tags"),
    Case("root-is-a-file", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/root.txt"], "root.txt",
         setup=lambda t: _write(t / "root.txt", "not a folder")),
    Case("folder-class-with-newline", FOLDER, "a\\nb", setup=lambda t: _folder(t, ["a", "b"], ["a", "a\nb"])),
    Case("store-cards-is-link", ["leaderboard", "build", "--store", "{tmp}/s"], "not a file or link",
         setup=lambda t: ((t / "real").mkdir(), (t / "s").mkdir(), (t / "s" / "cards").symlink_to(t / "real"))),
    Case("verify-zero-images", ["verify", "{tmp}/run", "--images", "0"], "--images"),
    # ---- more image files
    Case("folder-soi-only-jpeg", FOLDER, "soi.jpg", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/a/soi.jpg": lambda p: _write(p, b"\xff\xd8")})),
    Case("folder-bmp-header-only", FOLDER, "head.bmp", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/a/head.bmp": lambda p: _write(p, b"BM" + b"\0" * 12)})),
    Case("folder-svg-named-png", FOLDER, "vector.png", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/b/vector.png": lambda p: _write(p, '<svg xmlns="http://www.w3.org/2000/svg"/>')})),
    Case("folder-png-bad-crc", FOLDER, "crc.png", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/b/crc.png": _broken_png})),
    Case("folder-truncated-tiff", FOLDER, "cut.tif", setup=lambda t: _folder(t, ["a", "b"], extra={
        "test/a/cut.tif": _truncated_tiff})),
    Case("folder-bomb-in-test-split", FOLDER, "bomb.png", setup=lambda t: _folder(t, ["a", "b"], extra={
        "test/b/bomb.png": lambda p: _png_bomb(p)})),
    Case("folder-only-hidden-images", FOLDER, "no image files", setup=lambda t: _folder(t, ["a", "b"], extra={
        "train/c/.hidden.png": lambda p: _good_png(p)})),
    Case("folder-split-is-file", FOLDER, "splits under", setup=lambda t: (_folder(t, ["a", "b"], []),
                                                                        _write(t / "folder" / "test", "file"))),
    # ---- more checkpoints
    Case("ckpt-nan-running-var", CKPT, "nan or infinite", setup=lambda t: _ckpt(t, {
        k: (torch.full_like(v, float("nan")) if k.endswith("running_var") else v) for k, v in _tiny_state().items()})),
    Case("ckpt-half-int8", CKPT, "wrong type",
         setup=lambda t: _ckpt(t, {k: v.to(torch.int8) for k, v in _tiny_state().items()})),
    Case("ckpt-zip-without-data", CKPT, "c.pth", setup=lambda t: _empty_zip(t / "c.pth")),
    Case("ckpt-nested-twice", CKPT, "holds no tensors",
         setup=lambda t: _ckpt(t, {"state_dict": {"state_dict": _tiny_state()}})),
    Case("ckpt-key-missing", [*CKPT, "--checkpoint-key", "ema"], "no key 'ema'",
         setup=lambda t: _ckpt(t, {"model": _tiny_state()})),
    Case("ckpt-wrong-strip-prefix", [*CKPT, "--strip-prefix", "encoder."], "missing",
         setup=lambda t: _ckpt(t, {f"backbone.{k}": v for k, v in _tiny_state().items()})),
    Case("ckpt-safetensors-nan", [*EVAL, "--model", "{tmp}/c.safetensors", "--arch", "tiny_resnet/16-32-64-128"],
         "nan or infinite", setup=_nan_safetensors),
    # ---- more stores and cards
    Case("card-with-bom", ["submit", "{tmp}/store/cards/m-1__clean__abababab.json", "--to", "{tmp}/other"],
         "not valid json", setup=lambda t: _prefix_file(_store_with_card(t), b"\xef\xbb\xbf")),
    Case("card-too-large", ["submit", "{tmp}/big/cards/clean.json", "--to", "{tmp}/other"], "larger than",
         setup=lambda t: _write(t / "big" / "cards" / "clean.json", b" " * (5 << 20))),
    Case("card-is-link", ["submit", "{tmp}/s/cards/x__clean__abababab.json", "--to", "{tmp}/o"], "symbolic link",
         setup=lambda t: (
        _write(t / "s" / "real.json", "{}"), (t / "s" / "cards").mkdir(),
        (t / "s" / "cards" / "x__clean__abababab.json").symlink_to(t / "s" / "real.json"))),
    Case("evidence-is-link", ["verify", "{tmp}/store/cards/m-1__clean__abababab.json"], "symbolic link",
         setup=lambda t: _relink_evidence(_store_with_card(t))),
    Case("evidence-not-parquet", ["verify", "{tmp}/store/cards/m-1__clean__abababab.json"], "sha256 differs",
         setup=lambda t: _store_with_card(t).parent.parent.joinpath(
             "evidence", "m-1__clean__abababab.parquet").write_bytes(b"not parquet")),
    Case("submit-dry-run-to-option", ["submit", "{tmp}/run", "--to", "-", "--dry-run"], "must not begin with '-'"),
    Case("show-suite-without-boards", ["leaderboard", "show", "--store", "{tmp}/store", "--suite", "pd"],
         "no board matches", setup=lambda t: _store_with_card(t)),
    Case("compare-card-missing-evidence", ["compare", "{tmp}/store/cards/m-1__clean__abababab.json",
                                           "{tmp}/store/cards/m-1__clean__abababab.json"], "evidence file not found",
         setup=lambda t: _store_with_card(t).parent.parent.joinpath(
             "evidence", "m-1__clean__abababab.parquet").unlink()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_more_bad_input_is_one_clear_error_and_loses_nothing(tmp_path, case, monkeypatch):
    check_case(tmp_path, case, monkeypatch)


def test_the_second_table_holds_new_kinds():
    from test_bad_input import CASES as FIRST

    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
    assert not {c.id for c in CASES} & {c.id for c in FIRST}


@pytest.fixture()
def small_disk(tmp_path):
    """A 2 MiB tmpfs (skipped where this machine cannot mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_error_line_and_keeps_finished_work(small_disk, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    _write(small_disk / "run" / "keep.txt", "earlier work")
    _write(small_disk / "filler", b"\0" * ((2 << 20) - (64 << 10)))  # leave almost nothing free
    result = CliRunner().invoke(main, ["probe", "--cache-dir", str(small_disk / "cache"), "--out",
                                       str(small_disk / "run"), "--set", "data.train_limit=300",
                                       "--set", "data.eval_limit=100"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "Traceback" not in result.output, result.output
    assert any(word in errors[0] for word in ("free", "No space")), errors[0]
    assert (small_disk / "run" / "keep.txt").read_text() == "earlier work"


def test_a_read_only_output_is_one_error_line(small_disk, tmp_path):
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = CliRunner().invoke(main, ["eval", "--out", str(small_disk / "run"), "--set", "data.eval_limit=50",
                                       "--set", "data.train_limit=200"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "read-only" in errors[0].lower(), result.output


@pytest.mark.parametrize("kind", ["1x1", "cmyk", "16-bit", "palette-alpha", "animated-png", "webp", "grey-alpha"])
def test_odd_but_valid_images_load_as_rgb(tmp_path, kind):
    from ssl_robustbench.data import DataRequest, build_dataset
    from ssl_robustbench.preprocess import Preprocess

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 50, 3), np.uint8))
    path = tmp_path / "train" / "a" / "img"
    path.parent.mkdir(parents=True)
    if kind == "1x1":
        rgb.resize((1, 1)).save(path.with_suffix(".png"))
    elif kind == "cmyk":
        rgb.convert("CMYK").save(path.with_suffix(".jpg"))
    elif kind == "16-bit":
        Image.fromarray(rng.integers(0, 65535, (40, 50), np.uint16)).save(path.with_suffix(".png"))
    elif kind == "palette-alpha":
        rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(path.with_suffix(".png"), transparency=0)
    elif kind == "animated-png":  # APNG (GIF is not among ImageFolder's extensions)
        rgb.save(path.with_suffix(".png"), save_all=True, append_images=[rgb.rotate(90)], duration=50)
    elif kind == "webp":
        rgb.save(path.with_suffix(".webp"))
    else:
        rgb.convert("LA").save(path.with_suffix(".png"))
    _good_png(tmp_path / "train" / "b" / "b.png")
    ds = build_dataset("imagefolder", DataRequest(split="train", preprocess=Preprocess(input_size=32, crop_pct=1.0),
                                                  root=tmp_path, classes=("a", "b")))
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and y == 0


def test_a_generated_tree_that_cannot_fit_is_refused_before_any_write(small_disk):
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    result = CliRunner().invoke(main, ["generate", "c", "--out", str(small_disk / "gen"), "--limit", "200"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "MiB free" in errors[0], result.output
    assert not any((small_disk / "gen").rglob("*.png"))
