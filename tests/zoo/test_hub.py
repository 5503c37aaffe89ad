"""The Hugging Face Hub as a source (issue 42, item 2), end to end against a local endpoint on 127.0.0.1 that
speaks the Hub's file-resolve protocol: ``HEAD``/``GET /<repo>/resolve/<revision>/<file>`` answered with the
commit (``X-Repo-Commit``) and ETag, large files redirected (302) to a content URL with ``X-Linked-Etag`` and
``X-Linked-Size`` as the Hub does for LFS files, ``X-Error-Code`` on a missing file (404) and a gated repository
(401). Downloads go through ``huggingface_hub`` into its cache (``HF_HUB_CACHE``), honour ``HF_ENDPOINT`` and
``HF_HUB_OFFLINE``, and are checked against the card's sha256."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest
import timm
import torch
from click.testing import CliRunner
from safetensors.torch import save

from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo import checkpoint_path, load_model, resolve_card
from ssl_robustbench.zoo.card import parse_card

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "org/tiny-vit"


def _repo_files():
    torch.manual_seed(0)
    model = timm.create_model("test_vit", num_classes=10, img_size=64)
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    config = {"architecture": "test_vit", "num_classes": 10, "model_args": {"img_size": 64},
              "pretrained_cfg": {"input_size": [3, 64, 64], "interpolation": "bicubic", "crop_pct": 0.95,
                                 "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "classifier": "head",
                                 "license": "apache-2.0"}}
    return {"model.safetensors": weights, "config.json": json.dumps(config).encode()}, model


class Hub(http.server.BaseHTTPRequestHandler):
    files: dict[str, dict[str, bytes]] = {}
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        type(self).requests.append(f"{self.command} {self.path}")
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "cdn":  # where the Hub's LFS redirect points
            data = next(f for repo in self.files.values() for f in repo.values()
                        if hashlib.sha256(f).hexdigest() == parts[1])
            return self._bytes(200, data if body else None, {"Content-Length": str(len(data))})
        if parts[:2] == ["gated", "model"]:
            return self._bytes(401, b"", {"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"})
        repo, kind, revision, filename = "/".join(parts[:2]), parts[2], parts[3], "/".join(parts[4:])
        if kind != "resolve" or repo not in self.files or revision not in (COMMIT, "main"):
            return self._bytes(404, b"", {"X-Error-Code": "RepoNotFound" if repo not in self.files
                                                                          else "RevisionNotFound"})
        data = self.files[repo].get(filename)
        if data is None:
            return self._bytes(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
        digest = hashlib.sha256(data).hexdigest()
        if filename.endswith(".safetensors"):
            # another host name, as the Hub's CDN is: the client reads the metadata here and fetches from there
            return self._bytes(302, b"", {"Location": f"http://localhost:{self.server.server_port}/cdn/{digest}",
                                          "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{digest}"',
                                          "X-Linked-Size": str(len(data)), "ETag": '"pointer"'})
        return self._bytes(200, data if body else None, {"X-Repo-Commit": COMMIT, "ETag": f'"{digest[:40]}"',
                                                         "Content-Length": str(len(data))})

    def _bytes(self, status, data, headers):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    files, model = _repo_files()
    Hub.files, Hub.requests = {REPO: files}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield files, model
    server.shutdown()


def _card(tmp_path, **source):
    data = {"id": "tiny-vit-hub", "arch": "timm/test_vit", "method": "unknown", "paper": "-", "license": "MIT",
            "source": {"hub": REPO, "revision": COMMIT, "filename": "model.safetensors", **source},
            "features": {"img_size": 64}, "ignore_keys": ["head\\..*"], "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5], "input_size": 64, "crop_pct": 0.95, "interpolation": "bicubic"}
    return parse_card(data, where="test", card_dir=tmp_path)


def test_a_hub_card_downloads_through_the_lfs_redirect_and_checks_its_sha256(hub, tmp_path):
    files, model = hub
    card = _card(tmp_path, sha256=hashlib.sha256(files["model.safetensors"]).hexdigest())
    loaded = load_model(card)
    assert str(loaded.report.ignored) and "hf-cache" in str(checkpoint_path(card))
    assert any(r.startswith("GET /cdn/") for r in Hub.requests)  # the content came through the redirect
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want = model.eval().forward_head(model.forward_features((x - 0.5) / 0.5), pre_logits=True)
        assert torch.allclose(loaded.model.eval()(x), want, atol=1e-5)


def test_offline_reads_the_cache_and_names_what_is_missing(hub, tmp_path, monkeypatch):
    files, _ = hub
    card = _card(tmp_path, sha256=hashlib.sha256(files["model.safetensors"]).hexdigest())
    checkpoint_path(card)
    Hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert checkpoint_path(card).is_file() and Hub.requests == []  # no network at all
    with pytest.raises(UserError, match="not in the Hub cache .*HF_HUB_OFFLINE is set"):
        checkpoint_path(_card(tmp_path, filename="other.safetensors"))


@pytest.mark.parametrize("source, message", [
    ({"sha256": "ab" * 32}, "sha256 mismatch"),
    ({"filename": "missing.safetensors"}, "has no file 'missing.safetensors'"),
    ({"hub": "gated/model"}, "is gated: accept its license"),
    ({"hub": "org/nothing"}, "no Hub repository org/nothing"),
])
def test_hub_failures_are_one_clear_error(hub, tmp_path, source, message):
    with pytest.raises(UserError, match=message):
        checkpoint_path(_card(tmp_path, **source))


def test_a_card_must_pin_a_commit():
    data = {"id": "x", "arch": "timm/test_vit", "method": "unknown", "paper": "-", "license": "MIT",
            "source": {"hub": REPO, "revision": "main", "filename": "model.safetensors"}, "mean": [0.5] * 3,
            "std": [0.5] * 3, "input_size": 64, "crop_pct": 0.95, "interpolation": "bicubic"}
    with pytest.raises(UserError, match="40-digit commit hash"):
        parse_card(data, where="test", card_dir=None)


def test_hf_hub_model_without_a_card_takes_its_preprocessing_from_the_config(hub, tmp_path):
    card = resolve_card(f"hf-hub:{REPO}@{COMMIT}")
    assert (card.arch, card.mean, card.input_size, card.crop_pct, card.interpolation) == \
        ("timm/test_vit", (0.5, 0.5, 0.5), 64, 0.95, "bicubic")
    assert card.source.hub == REPO and card.features == {"img_size": 64} and card.license == "apache-2.0"
    load_model(card)  # strict: the classifier named by the config is the only key left out
    with pytest.raises(UserError, match="names no revision"):
        resolve_card(f"hf-hub:{REPO}")


def test_a_config_without_normalization_is_refused(hub, tmp_path):
    files, _ = hub
    config = json.loads(files["config.json"])
    del config["pretrained_cfg"]["mean"]
    files["config.json"] = json.dumps(config).encode()
    with pytest.raises(UserError, match="states no mean"):
        resolve_card(f"hf-hub:{REPO}@{COMMIT}")


def test_eval_scores_an_hf_hub_model_end_to_end(hub, tmp_path):
    from ssl_robustbench.cli import main

    result = CliRunner().invoke(main, ["eval", "--model", f"hf-hub:{REPO}@{COMMIT}", "--device", "cpu",
                                       "--set", "data.eval_limit=64", "--set", "data.train_limit=128",
                                       "--set", "probe.epochs=2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert REPO in json.dumps(model)


def _dinov2_repo(tmp_path):
    """A tiny DINOv2-with-registers repository as transformers saves it (config.json, model.safetensors) plus the
    image processor's config, and the same random weights in DINOv2's own layout."""
    transformers = pytest.importorskip("transformers", reason="the optional transformers extra")
    torch.manual_seed(0)
    config = transformers.Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                                    intermediate_size=64, image_size=70, patch_size=14,
                                                    num_register_tokens=4)
    model = transformers.Dinov2WithRegistersModel(config)
    for p in model.parameters():  # nothing left at zero or one: every token, scale and norm counts
        torch.nn.init.normal_(p, std=0.05)
    model.save_pretrained(tmp_path / "saved")
    processor = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3,
                 "size": {"shortest_edge": 32}, "crop_size": {"height": 28, "width": 28}, "do_center_crop": True}
    files = {name: (tmp_path / "saved" / name).read_bytes() for name in ("config.json", "model.safetensors")}
    files["preprocessor_config.json"] = json.dumps(processor).encode()
    return files, model


def _official_dinov2_features(model, x):
    """DINOv2's own recipe (prepare_tokens_with_masks, blocks, norm; hub classifier input with 1 block) on the
    transformers model's weights, written out step by step."""
    emb = model.embeddings
    tokens = emb.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
    tokens = torch.cat((emb.cls_token.expand(len(x), -1, -1), tokens), dim=1)
    pos = emb.position_embeddings
    side, grid, dim = 5, x.shape[-1] // 14, pos.shape[-1]
    patch = torch.nn.functional.interpolate(pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2),
                                            mode="bicubic", antialias=False,
                                            scale_factor=((grid + 0.1) / side, (grid + 0.1) / side))
    tokens = tokens + torch.cat((pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)
    tokens = torch.cat((tokens[:, :1], emb.register_tokens.expand(len(x), -1, -1), tokens[:, 1:]), dim=1)
    for layer in model.encoder.layer:
        attn = layer.attention
        h = layer.norm1(tokens)
        q, k, v = (proj(h).reshape(len(x), -1, 2, 16).transpose(1, 2) for proj in (attn.q_proj, attn.k_proj,
                                                                                   attn.v_proj))
        a = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1) @ v
        tokens = tokens + layer.layer_scale1.lambda1 * attn.o_proj(a.transpose(1, 2).reshape(len(x), -1, 32))
        tokens = tokens + layer.layer_scale2.lambda1 * layer.mlp(layer.norm2(tokens))
    out = model.layernorm(tokens)
    return torch.cat((out[:, 0], out[:, 5:].mean(dim=1)), dim=1)


def test_a_transformers_dinov2_scores_dinov2s_features(hub, tmp_path):
    files, model = _dinov2_repo(tmp_path)
    Hub.files["org/tiny-dinov2"] = files
    card = resolve_card(f"hf-hub:org/tiny-dinov2@{COMMIT}")
    assert card.arch == "transformers/dinov2_with_registers"
    assert (card.input_size, card.crop_pct, card.interpolation) == (28, 28 / 32, "bicubic")
    loaded = load_model(card)
    x = torch.rand(2, 3, 28, 28)
    normalized = (x - torch.tensor(card.mean).view(1, 3, 1, 1)) / torch.tensor(card.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ours, want = loaded.model.eval()(x), _official_dinov2_features(model.eval(), normalized)
    assert ours.shape == (2, 64) and (ours - want).abs().max().item() <= 1e-5


def test_a_transformers_repo_without_normalization_is_refused(hub, tmp_path):
    files, _ = _dinov2_repo(tmp_path)
    processor = json.loads(files["preprocessor_config.json"])
    del processor["image_std"]
    files["preprocessor_config.json"] = json.dumps(processor).encode()
    Hub.files["org/tiny-dinov2"] = files
    with pytest.raises(UserError, match="states no image_std"):
        resolve_card(f"hf-hub:org/tiny-dinov2@{COMMIT}")
