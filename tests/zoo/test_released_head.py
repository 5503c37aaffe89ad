"""Released linear heads (``--head released``) and the checkpoint options ``--ignore-keys`` / ``--input-size``."""

import hashlib
import http.server
import json
import threading

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from ssl_robustbench.cli import main
from ssl_robustbench.results import read_table
from ssl_robustbench.zoo import get_card, zoo_dir

FAST = ["--set", "data.train_limit=300", "--set", "data.eval_limit=200", "--device", "cpu"]


@pytest.fixture()
def served(tmp_path):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path / "www"), **kw)

        def log_message(self, *args):
            pass

    (tmp_path / "www").mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield tmp_path / "www", f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def card_with_head(tmp_path, url, sha256, *, top1=42.0):
    base = get_card("embedded-simclr-tinyresnet")
    data = yaml.safe_load((zoo_dir() / "embedded-simclr-tinyresnet.yaml").read_text())
    data.update(id="simclr-with-head", source={"path": str(base.card_dir / base.source.path),
                                               "sha256": base.source.sha256},
                linear_head={"url": url, "sha256": sha256, "checkpoint_key": "state_dict", "prefix": "module.fc.",
                             "top1": top1, "source": "a test server"})
    path = tmp_path / "simclr-with-head.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_released_head_is_scored_without_a_probe_fit(tmp_path, served):
    www, url = served
    fitted = invoke("eval", "--out", tmp_path / "fit", *FAST)  # a probe, published below as "the authors' head"
    assert fitted.exit_code == 0, fitted.output
    head = load_file(str(tmp_path / "fit" / "probe.safetensors"))
    torch.save({"state_dict": {"module.fc.weight": head["weight"], "module.fc.bias": head["bias"]}, "epoch": 100},
               www / "lincls.pth.tar")
    digest = hashlib.sha256((www / "lincls.pth.tar").read_bytes()).hexdigest()
    card = card_with_head(tmp_path, f"{url}/lincls.pth.tar", digest)
    result = invoke("eval", "--model", card, "--head", "released", "--out", tmp_path / "rel", *FAST)
    assert result.exit_code == 0, result.output
    ours, theirs = read_table(tmp_path / "fit" / "results.csv")[0], read_table(tmp_path / "rel" / "results.csv")[0]
    assert theirs.value == ours.value and theirs.probe_id == f"released-{digest[:16]}"
    check = json.loads((tmp_path / "rel" / "head_check.json").read_text())
    assert check["published_top1"] == 42.0 and check["comparable"] is False  # not ImageNet val: no verdict
    protocol = json.loads((tmp_path / "rel" / "protocol.json").read_text())
    assert protocol["head"] == "released" and protocol["train_data"] is None
    assert "not comparable" in result.output

    bad = card_with_head(tmp_path, f"{url}/lincls.pth.tar", "0" * 64)
    assert invoke("eval", "--model", bad, "--head", "released", "--out", tmp_path / "bad", *FAST).exit_code == 2


def test_released_head_of_the_wrong_shape_or_missing_is_a_clear_error(tmp_path, served):
    www, url = served
    torch.save({"state_dict": {"module.fc.weight": torch.zeros(1000, 192), "module.fc.bias": torch.zeros(1000)}},
               www / "big.pth")
    card = card_with_head(tmp_path, f"{url}/big.pth", None)
    result = invoke("eval", "--model", card, "--head", "released", "--out", tmp_path / "r", *FAST)
    assert result.exit_code == 2 and "linear head is (1000, 192) but backbone and data need (10, 192)" in result.output
    result = invoke("eval", "--head", "released", "--out", tmp_path / "none", *FAST)
    assert result.exit_code == 2 and "has no released linear head" in result.output


def test_ignore_keys_and_input_size_from_the_cli(tmp_path):
    base = get_card("embedded-simclr-tinyresnet")
    state = load_file(str(base.card_dir / base.source.path))
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 192), torch.zeros(1000)  # a classifier the arch lacks
    ckpt = tmp_path / "with-fc.safetensors"
    save_file(state, str(ckpt))
    refused = invoke("eval", "--model", ckpt, "--arch", "tiny_resnet", "--input-size", 64, "--out", tmp_path / "a",
                     *FAST)
    assert refused.exit_code == 2 and "unexpected 2: fc.bias, fc.weight" in refused.output
    ok = invoke("eval", "--model", ckpt, "--arch", "tiny_resnet", "--ignore-keys", r"fc\..*", "--input-size", 64,
                "--out", tmp_path / "b", *FAST)
    assert ok.exit_code == 0, ok.output
    model = json.loads((tmp_path / "b" / "model.json").read_text())
    assert model["card"]["input_size"] == 64 and model["load_report"]["ignored"] == ["fc.bias", "fc.weight"]
    assert model["card"]["mean"] == [0.485, 0.456, 0.406]  # a bare checkpoint: the ImageNet convention
    assert read_table(tmp_path / "b" / "results.csv")[0].value > 0.2  # the trained backbone (chance: 0.10)
