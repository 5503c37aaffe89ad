"""Bad input at the boundary, table-driven: every case must end with exit status 2, exactly one ``error:`` line
naming the problem, no traceback, and nothing lost — every file that existed in the run directory and the store
before the command is still there, byte for byte.

Kinds: numbers taken on trust (ranges, finiteness, sizes), stale generated trees, files (configs, zoo cards,
images, run directories, caches, tables), names, downloads, stores and result files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_robustbench.cli import main


@dataclasses.dataclass
class Case:
    id: str
    args: list[str]  # "{tmp}" is replaced by the case's directory
    message: str  # a substring of the error line (case-insensitive)
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height (no pixel data): enough for a decompression-bomb check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    _write(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _good_png(path: Path, size: int = 64) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(path)


def _folder_with(tmp: Path, files: dict[str, Callable[[Path], None]]) -> None:
    """An imagefolder root ``tmp/folder`` with train/ and test/ splits holding ``files`` (relative name → maker)."""
    for split in ("train", "test"):
        _good_png(tmp / "folder" / split / "ok" / "a.png")
        _good_png(tmp / "folder" / split / "fine" / "a.png")  # two classes: one class cannot be scored
        for name, make in files.items():
            make(tmp / "folder" / split / name)


def _truncated_jpeg(path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    _write(path, buf.getvalue()[: len(buf.getvalue()) // 2])


def _card(tmp: Path, **changes) -> None:
    """A zoo directory ``tmp/zoo`` holding one card ``bad.yaml`` (a valid card with ``changes``)."""
    import yaml

    from ssl_robustbench.resources import project_dir

    card = yaml.safe_load((project_dir("model_zoo") / "embedded-random-tinyresnet.yaml").read_text())
    card.update(changes)
    _write(tmp / "zoo" / "bad.yaml", yaml.safe_dump(card))


def _run_dir_with(name: str, content: bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        _write(tmp / "run" / name, content)
    return setup


EVAL = ["eval", "--out", "{tmp}/run"]
SET = [*EVAL, "--set"]
GEN_C = ["generate", "c", "--out", "{tmp}/gen", "--corruption", "fog", "--severity", "1", "--limit", "4"]
PRETRAIN = ["pretrain", "--out", "{tmp}/run"]

CASES = [
    # ---- numbers taken on trust: eval and probe config keys
    *[Case(f"set-{k}={v}", [*SET, f"{k}={v}"], k.split(".")[-1]) for k, v in [
        ("run.batch_size", "0"), ("run.batch_size", "-1"), ("run.batch_size", "1e20"),
        ("run.batch_size", str(2**40)), ("run.workers", "-1"), ("run.workers", "100000"), ("run.seed", "-1"),
        ("run.seed", str(2**64)), ("data.train_limit", "0"), ("data.train_limit", "-5"), ("data.eval_limit", "-5"),
        ("data.eval_limit", "0"), ("probe.max_iter", "-1"), ("probe.max_iter", "0"), ("probe.weight_decay", "nan"),
        ("probe.weight_decay", "-1"), ("probe.weight_decay", "inf"), ("probe.lr", "0"), ("probe.lr", "nan"),
        ("probe.momentum", "1.5"), ("probe.batch_size", "0"), ("probe.tolerance", "-1"), ("probe.epochs", "-3"),
        ("adv.epochs", "-1"), ("adv.eps", "nan"), ("adv.eps", "-0.1"), ("adv.n", "0"), ("adv.pgd_steps", "0"),
        ("adv.pgd_restarts", "-2"), ("adv.batch_size", "0"), ("adv.pgd_step_size", "-1"), ("c.limit", "0"),
        ("c.limit", "-5"), ("pd.magnitude", "nan"), ("pd.magnitude", "-1"), ("pd.magnitude", "0"),
        ("pd.d", "0"), ("pd.d", "nan"), ("pd.limit", "-1"), ("e.limit", "0"), ("input_size", "0"),
        ("input_size", "100000"),
    ]],
    *[Case(f"set-{k}={v}", [*SET, f"{k}={v}"], m) for k, v, m in [
        ("probe.solver", "adam", "probe.solver"), ("adv.norm", "L3", "norm"), ("adv.autoattack", "fast", "autoattack"),
        ("adv.protocol", "xyz", "protocol"), ("adv.pgd_loss", "mse", "pgd_loss"), ("c.severities", "[0]", "severity"),
        ("c.severities", "[6]", "severity"), ("c.table", "tiny", "table"), ("c.reference", "wand", "reference"),
        ("c.corruptions", "[fgo]", "unknown corruption"), ("pd.views", "[up]", "unknown pd view"),
        ("head", "foo", "head"), ("ignore_keys", "['(']", "bad regex"), ("suites", "[nope]", "nope"),
        ("foo.bar", "1", "unknown config key"), ("data.name", "nope", "nope"), ("run.device", "tpu", "device"),
        ("probe", "3", "mapping"), ("run.batch_size", "abc", "batch_size"), ("data.train_limit", "1.5", "train_limit"),
    ]],
    Case("n-shift-negative", [*EVAL, "--suite", "c", "--n-shift", "-5"], "limit"),
    Case("n-adv-zero", [*EVAL, "--suite", "adversarial", "--n-adv", "0"], "adv.n"),
    Case("batch-size-option-zero", [*EVAL, "--batch-size", "0"], "batch-size"),
    Case("batch-size-option-float", [*EVAL, "--batch-size", "1e20"], "batch-size"),
    Case("workers-option-negative", [*EVAL, "--workers", "-1"], "workers"),
    Case("seed-option-huge", [*EVAL, "--seed", str(2**64)], "seed"),
    Case("probe-batch-zero", ["probe", "--out", "{tmp}/run", "--batch-size", "0"], "batch-size"),
    Case("suite-unknown", [*EVAL, "--suite", "nope"], "nope"),
    # ---- pretrain numbers
    *[Case(f"pretrain-{k}={v}", [*PRETRAIN, "--set", f"{k}={v}"], k.split(".")[-1]) for k, v in [
        ("epochs", "-1"), ("lr", "nan"), ("lr", "-0.1"), ("momentum", "2"), ("weight_decay", "-1"),
        ("warmup_epochs", "-1"), ("accumulate", "0"), ("input_size", "0"), ("view_size", "0"),
        ("color_strength", "-1"), ("knn_k", "0"), ("monitor_every", "-1"), ("run.batch_size", "1"),
        ("std", "[0, 0, 0]"), ("mean", "[0.5]"), ("optimizer", "rmsprop"), ("method", "nope"),
    ]],
    Case("pretrain-epochs-option", [*PRETRAIN, "--epochs", "-1"], "epochs"),
    Case("pretrain-lr-option", [*PRETRAIN, "--lr", "nan"], "lr"),
    # ---- generate numbers and stale trees
    *[Case(f"generate-c-{o}={v}", [*GEN_C, o, v], m) for o, v, m in [
        ("--batch-size", "0", "batch-size"), ("--limit", "0", "limit"), ("--limit", "-1", "limit"),
        ("--size", "0", "size"), ("--size", "-5", "size"), ("--table", "tiny", "table"),
        ("--reference", "wand", "reference"), ("--corruption", "fgo", "unknown corruption"),
        ("--seed", "-1", "seed"),
    ]],
    Case("generate-c-severity", ["generate", "c", "--out", "{tmp}/gen", "--severity", "6"], "severity"),
    *[Case(f"generate-pd-{o}={v}", ["generate", "pd", "--out", "{tmp}/gen", "--limit", "4", o, v], m) for o, v, m in [
        ("--d", "0", "pd.d"), ("--d", "nan", "pd.d"), ("--magnitude", "nan", "magnitude"),
        ("--magnitude", "-1", "magnitude"), ("--size", "0", "size"), ("--batch-size", "-1", "batch-size"),
    ]],
    Case("generate-e-limit-zero", ["generate", "e", "--out", "{tmp}/gen", "--limit", "0"], "limit"),
    Case("generate-e-limit-negative", ["generate", "e", "--out", "{tmp}/gen", "--limit", "-1"], "limit"),
    Case("generate-c-stale-seed", [*GEN_C, "--seed", "1"], "generated with other settings",
         setup=lambda t: _write(t / "gen" / "manifest.json", json.dumps({"kind": "c", "source": {"seed": 0}}))),
    Case("generate-c-manifest-corrupt", GEN_C, "manifest",
         setup=lambda t: _write(t / "gen" / "manifest.json", b"\xff\xfe{")),
    Case("generate-out-is-file", ["generate", "c", "--out", "{tmp}/file", "--limit", "4"], "file",
         setup=lambda t: _write(t / "file", "x")),
    # ---- files: configs
    Case("config-missing", [*EVAL, "--config", "{tmp}/none.yaml"], "not found"),
    Case("config-not-utf8", [*EVAL, "--config", "{tmp}/c.yaml"], "c.yaml",
         setup=lambda t: _write(t / "c.yaml", b"probe:\n  lr: \xff\xfe\n")),
    Case("config-bad-yaml", [*EVAL, "--config", "{tmp}/c.yaml"], "not valid YAML",
         setup=lambda t: _write(t / "c.yaml", "probe: [1, 2\n")),
    Case("config-list", [*EVAL, "--config", "{tmp}/c.yaml"], "mapping", setup=lambda t: _write(t / "c.yaml", "- 1\n")),
    Case("config-unknown-key", [*EVAL, "--config", "{tmp}/c.yaml"], "unknown config key",
         setup=lambda t: _write(t / "c.yaml", "proble:\n  lr: 1\n")),
    Case("config-nan", [*EVAL, "--config", "{tmp}/c.yaml"], "weight_decay",
         setup=lambda t: _write(t / "c.yaml", "probe:\n  weight_decay: .nan\n")),
    Case("set-no-equals", [*EVAL, "--set", "probe.lr"], "key=value"),
    # ---- files: zoo cards and names
    Case("zoo-card-not-utf8", ["zoo", "show", "bad"], "bad.yaml", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _write(t / "zoo" / "bad.yaml", b"id: bad\nmethod: \xff\n")),
    Case("zoo-card-crop-abc", ["zoo", "show", "bad"], "crop_pct", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="bad", crop_pct="abc")),
    Case("zoo-card-unknown-key", ["zoo", "show", "bad"], "feature setting 'dim'",
         env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="bad", features={"dim": 3})),
    Case("zoo-card-input-size-huge", ["zoo", "show", "bad"], "input_size", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="bad", input_size=100000)),
    Case("zoo-card-mean-nan", ["zoo", "show", "bad"], "mean", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="bad", mean=[float("nan"), 0.5, 0.5])),
    Case("zoo-card-std-zero", ["zoo", "show", "bad"], "std", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="bad", std=[0.0, 0.2, 0.2])),
    Case("zoo-card-id-mismatch", ["zoo", "show", "bad"], "id", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/zoo"},
         setup=lambda t: _card(t, id="other")),
    Case("zoo-show-traversal", ["zoo", "show", "../../x"], "zoo id"),
    Case("zoo-show-newline", ["zoo", "show", "embedded-simclr-tinyresnet\n"], "zoo id"),
    Case("zoo-show-unknown", ["zoo", "show", "no-such-model"], "no-such-model"),
    Case("zoo-dir-missing", ["zoo", "list"], "zoo", env={"SSL_ROBUSTBENCH_ZOO": "{tmp}/missing"}),
    Case("eval-model-traversal", [*EVAL, "--model", "../../../../../../etc/passwd"], "--arch"),
    Case("eval-model-traversal-arch", [*EVAL, "--model", "../../../../../../etc/passwd", "--arch", "tiny_resnet"],
         "passwd"),
    Case("eval-model-missing-file", [*EVAL, "--model", "{tmp}/none.pth", "--arch", "tiny_resnet"], "none.pth"),
    Case("eval-checkpoint-garbage", [*EVAL, "--model", "{tmp}/x.pth", "--arch", "tiny_resnet"], "x.pth",
         setup=lambda t: _write(t / "x.pth", b"not a checkpoint")),
    Case("eval-checkpoint-empty", [*EVAL, "--model", "{tmp}/x.pth", "--arch", "tiny_resnet"], "x.pth",
         setup=lambda t: _write(t / "x.pth", b"")),
    Case("eval-arch-unknown", [*EVAL, "--model", "{tmp}/x.pth", "--arch", "nope_net"], "nope_net",
         setup=lambda t: _write(t / "x.pth", b"x")),
    # ---- files: data
    Case("imagefolder-missing-root", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/none"], "none"),
    Case("imagefolder-dir-named-jpg", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"], "no image files",
         setup=lambda t: _folder_with(t, {"cls/sub.jpg": lambda p: p.mkdir(parents=True)})),
    Case("imagefolder-decompression-bomb", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"],
         "big.png", setup=lambda t: _folder_with(t, {"ok/big.png": lambda p: _png_header_only(p, 20000, 10000)})),
    Case("imagefolder-not-an-image", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"], "bad.png",
         setup=lambda t: _folder_with(t, {"ok/bad.png": lambda p: _write(p, b"hello")})),
    Case("imagefolder-truncated-jpeg", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"], "bad.jpg",
         setup=lambda t: _folder_with(t, {"ok/bad.jpg": _truncated_jpeg})),
    Case("imagefolder-empty-class", [*EVAL, "--data", "imagefolder", "--data-root", "{tmp}/folder"], "empty",
         setup=lambda t: _folder_with(t, {"empty/.keep": lambda p: _write(p, "")})),
    Case("cifar-empty-root", [*EVAL, "--data", "cifar10", "--data-root", "{tmp}/cifar"], "cifar",
         setup=lambda t: (t / "cifar").mkdir()),
    Case("c-root-missing", [*EVAL, "--suite", "c", "--c-root", "{tmp}/none"], "not found"),
    Case("pd-root-missing", [*EVAL, "--suite", "pd", "--pd-root", "{tmp}/none"], "not found"),
    Case("e-root-missing", [*EVAL, "--suite", "e", "--set", "e.root={tmp}/none"], "not found"),
    # ---- files: run directories (resume reads them)
    Case("run-config-corrupt", EVAL, "config.yaml", setup=_run_dir_with("config.yaml", b"\xff\xfe: [")),
    Case("run-config-not-mapping", EVAL, "config.yaml", setup=_run_dir_with("config.yaml", b"- 1\n")),
    Case("out-under-a-file", ["eval", "--out", "{tmp}/file/run"], "file", setup=lambda t: _write(t / "file", "x")),
    # ---- metrics tables
    Case("metrics-c-missing-file", ["metrics", "c", "--from", "{tmp}/none.csv"], "none.csv"),
    Case("metrics-c-no-value-column", ["metrics", "c", "--from", "{tmp}/t.csv"], "value",
         setup=lambda t: _write(t / "t.csv", "suite,condition,severity\nc,c:fog,1\n")),
    Case("metrics-c-strings", ["metrics", "c", "--from", "{tmp}/t.csv"], "value",
         setup=lambda t: _write(t / "t.csv", "suite,condition,severity,metric,value\nc,c:fog,1,top1,abc\n")),
    Case("metrics-c-no-c-rows", ["metrics", "c", "--from", "{tmp}/t.csv"], "c:",
         setup=lambda t: _write(t / "t.csv", "model_id,condition,severity,metric,value\nm,clean,0,top1,0.5\n")),
    Case("metrics-c-nan", ["metrics", "c", "--from", "{tmp}/t.csv"], "value",
         setup=lambda t: _write(t / "t.csv", "suite,condition,severity,metric,value\nc,c:fog,1,top1,nan\n")),
    Case("metrics-c-not-utf8", ["metrics", "c", "--from", "{tmp}/t.csv"], "t.csv",
         setup=lambda t: _write(t / "t.csv", b"\xff\xfe\x00")),
    # ---- stores and result files
    Case("submit-missing-run", ["submit", "{tmp}/none", "--to", "{tmp}/store"], "none"),
    Case("submit-store-is-file", ["submit", "{tmp}/run", "--to", "{tmp}/storefile"], "storefile",
         setup=lambda t: (_write(t / "storefile", "x"), _write(t / "run" / "cards" / "clean.json", "{}"))),
    Case("submit-card-not-json", ["submit", "{tmp}/run", "--to", "{tmp}/store"], "clean.json",
         setup=_run_dir_with("cards/clean.json", b"{oops")),
    Case("submit-card-not-utf8", ["submit", "{tmp}/run", "--to", "{tmp}/store"], "clean.json",
         setup=_run_dir_with("cards/clean.json", b"\xff\xfe")),
    Case("submit-card-wrong-schema", ["submit", "{tmp}/run", "--to", "{tmp}/store"], "schema",
         setup=_run_dir_with("cards/clean.json", json.dumps({"schema_version": 99}).encode())),
    Case("submit-card-list", ["submit", "{tmp}/run", "--to", "{tmp}/store"], "clean.json",
         setup=_run_dir_with("cards/clean.json", b"[1, 2]")),
    Case("leaderboard-store-missing", ["leaderboard", "show", "--store", "{tmp}/none"], "none"),
    Case("leaderboard-validate-missing", ["leaderboard", "validate", "{tmp}/none"], "none"),
    Case("leaderboard-format-unknown", ["leaderboard", "build", "--store", "{tmp}/store", "--format", "pdf"], "pdf"),
]


def _snapshot(tmp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tmp)): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_error_and_loses_nothing(tmp_path, case, monkeypatch):
    check_case(tmp_path, case, monkeypatch)


def check_case(tmp_path: Path, case: Case, monkeypatch) -> None:
    """Runs ``case``: exit 2, one ``error:`` line holding its message, no traceback, nothing on disk changed."""
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    # a run directory and a store that already hold work
    _write(tmp_path / "run" / "keep.txt", "earlier work")
    _write(tmp_path / "store" / "cards" / "keep.json", "{}")
    if case.setup:
        case.setup(tmp_path)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in case.args])
    output = result.output
    errors = [line for line in output.splitlines() if line.lower().startswith("error:")]
    assert isinstance(result.exception, SystemExit) and "Traceback" not in output, (case.id, output,
                                                                                     result.exception)
    assert result.exit_code == 2, (case.id, result.exit_code, output, result.exception)
    assert len(errors) == 1, (case.id, output)
    assert case.message.lower() in errors[0].lower(), (case.id, errors[0])
    after = _snapshot(tmp_path)
    lost = [name for name, data in before.items() if after.get(name) != data]
    assert not lost, (case.id, "lost or changed", lost)


def test_the_table_covers_at_least_100_bad_inputs():
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)


def test_cases_do_not_leak_environment():
    assert "SSL_ROBUSTBENCH_ZOO" not in os.environ


def test_a_bad_zoo_card_is_skipped_by_zoo_list_with_a_warning(tmp_path, monkeypatch):
    _card(tmp_path, id="bad", crop_pct="abc")
    _card(tmp_path, id="good")
    (tmp_path / "zoo" / "bad.yaml").rename(tmp_path / "zoo" / "good.yaml")
    _card(tmp_path, id="bad", crop_pct="abc")
    monkeypatch.setenv("SSL_ROBUSTBENCH_ZOO", str(tmp_path / "zoo"))
    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    assert "warning: skipped zoo card" in result.output and "bad.yaml" in result.output and "good" in result.output


def test_damaged_caches_are_rebuilt_with_a_message(tmp_path, cache_dir, capsys):
    import shutil

    import numpy as np

    from ssl_robustbench.data import embedded

    # the embedded data cache: a damaged split is generated again, identical to the first
    images, labels = embedded.load_split("val", cache_dir=cache_dir)
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir / "embedded", cache / "embedded")
    for path in (cache / "embedded").glob("val-*.npz"):
        path.write_bytes(b"PK\x03\x04 damaged")
    again, again_labels = embedded.load_split("val", cache_dir=cache)
    assert "embedded-data cache" in capsys.readouterr().err
    assert np.array_equal(again.numpy(), images.numpy()) and np.array_equal(again_labels, labels)
    # the feature cache: a damaged store is extracted again, and the probe gives the same number
    args = ["probe", "--cache-dir", str(cache), "--set", "data.train_limit=300", "--set", "data.eval_limit=200"]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    metas = list((cache / "features").rglob("meta.json"))
    assert metas
    for meta in metas:
        meta.write_text('{"n": "many"}')
    second = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert "extracting the features again" in second.output
    def clean_top1(output: str) -> list[str]:
        return [line for line in output.splitlines() if line.startswith("clean top-1")]

    assert clean_top1(first.output) and clean_top1(first.output) == clean_top1(second.output)


def test_pretrain_zero_epochs_exports_the_initialization(tmp_path):
    # how the random-init baseline checkpoint is made: no step, the seeded initialization exported
    result = CliRunner().invoke(main, ["pretrain", "--out", str(tmp_path / "run"), "--epochs", "0",
                                       "--set", "data.train_limit=256"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "backbone.safetensors").is_file() and (tmp_path / "run" / "card.yaml").is_file()


def test_missing_imagenet_root_stops_before_the_download_and_leaves_no_run(tmp_path):
    # a zoo card with a URL: the data is checked first, so nothing is fetched and no run directory is left
    result = CliRunner().invoke(main, ["eval", "--model", "mocov3-rn50-1000ep", "--data", "imagenet", "--data-root",
                                       str(tmp_path / "none"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "error:" in result.output and "none" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_submit_to_an_unreachable_git_remote_is_one_plain_line(tmp_path):
    from cardfactory import make_card, write_card

    write_card(tmp_path / "run", make_card(), name="clean.json")
    result = CliRunner().invoke(main, ["submit", str(tmp_path / "run"), "--to", f"file://{tmp_path}/none.git"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert errors[0].startswith("error: cannot clone") and "['" not in errors[0], errors[0]
