"""DINOv3 cards (issue 42): the distilled ViT-S/16, S+/16, B/16, L/16, H+/16 and the ViT-7B/16 with its released
linear head, from the official files (facebookresearch/dinov3 ``hub/backbones.py``).

The official checkpoint layout (``models/vision_transformer.py``: ``cls_token``, ``storage_tokens``, ``mask_token``,
``rope_embed.periods``, ``blocks.N.{norm1, attn.qkv (+ bias_mask), attn.proj, ls1.gamma, norm2, mlp, ls2.gamma}``
with ``mlp.fc1/fc2`` or SwiGLU ``mlp.w1/w2/w3``, ``norm``, ViT-7B's ``local_cls_norm``) is synthesized with random
weights. Each card loads it strictly, and its features must equal DINOv3's recipe written out here from the
official code, step by step and without timm: patch embedding, [class, 4 storage, patches], RoPE on the patch tokens
(``RopePositionEmbedding`` with the file's periods, ``rope_apply`` with rotate-half), attention with the key bias
masked by ``bias_mask``, layer scale, the final norm, and ``create_linear_input`` (class token + patch-token mean)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from meta_load import strict_load_on_meta

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo import list_cards, load_model, load_released_head
from ssl_robustbench.zoo.formats import CHECKPOINT_FORMATS

CARDS = [c for c in list_cards() if c.method == "dinov3"]
#: hub/backbones.py: embed_dim, depth, num_heads, ffn_ratio, ffn_layer (SwiGLU alignment, 0: GELU MLP), qkv_bias
OFFICIAL = {"vits16": (384, 12, 6, 4, 0, True), "vits16plus": (384, 12, 6, 6, 8, True),
            "vitb16": (768, 12, 12, 4, 0, True), "vitl16": (1024, 24, 16, 4, 0, True),
            "vith16plus": (1280, 32, 20, 6, 8, True), "vit7b16": (4096, 40, 32, 3, 64, False)}
HASHES = {"vits16": "08c60483", "vits16plus": "4057cbaa", "vitb16": "73cec8be", "vitl16": "8aa4cbdd",
          "vith16plus": "7c1da9a5", "vit7b16": "a955f4ea"}  # hub/backbones.py, torch.hub's sha256 prefixes


def _official_layout(arch: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A random state dict named and shaped as DINOv3's DinoVisionTransformer of the size of timm's ``arch``."""
    with torch.device(device):
        native = timm.create_model(arch.removeprefix("timm/"), pretrained=False, num_classes=0)
    dim, heads = native.embed_dim, native.blocks[0].attn.num_heads
    state: dict[str, torch.Tensor] = {}
    for key, value in native.state_dict().items():
        value = torch.randn_like(value) * (0.25 if key.endswith("qkv.weight") else 0.05)  # peaked attention,
        if "gamma" in key:  # and blocks that change the tokens, so that the RoPE phases show in the features
            value = value + 1
        if key.endswith(("attn.q_bias", "attn.v_bias")):
            continue
        key = key.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        key = key.replace("mlp.fc1_g", "mlp.w1").replace("mlp.fc1_x", "mlp.w2")
        state[key] = value
    if any(".mlp.w1." in k for k in state):  # SwiGLU: fc2 is w3
        state = {k.replace("mlp.fc2", "mlp.w3"): v for k, v in state.items()}
    for i, block in enumerate(native.blocks):
        if getattr(block.attn, "q_bias", None) is not None:  # qkv_bias true: one fused bias and its mask
            state[f"blocks.{i}.attn.qkv.bias"] = torch.randn(3 * dim, device=device) * 0.05  # key third non-zero
            mask = torch.ones(3 * dim, device=device)
            mask[dim:2 * dim] = 0
            state[f"blocks.{i}.attn.qkv.bias_mask"] = mask
    quarter = dim // heads // 4  # RopePositionEmbedding, base 100, stored in bfloat16 by training
    periods = 100.0 ** (2 * torch.arange(quarter, dtype=torch.float32, device=device) / (2 * quarter))
    state["rope_embed.periods"] = periods.to(torch.bfloat16)
    state["mask_token"] = torch.zeros(1, dim, device=device)
    if "7b" in arch:
        state["local_cls_norm.weight"] = torch.ones(dim, device=device)
        state["local_cls_norm.bias"] = torch.zeros(dim, device=device)
    return state


def _reference_features(official: dict[str, torch.Tensor], x: torch.Tensor, heads: int) -> torch.Tensor:
    """DINOv3's forward and ``create_linear_input`` (1 block, avgpool) on normalized ``x``, from the file's tensors."""
    t = {k: v.float() for k, v in official.items()}
    dim = t["cls_token"].shape[-1]
    patches = F.conv2d(x, t["patch_embed.proj.weight"], t["patch_embed.proj.bias"], stride=16)
    h, w = patches.shape[-2:]
    tokens = torch.cat((t["cls_token"].expand(len(x), -1, -1), t["storage_tokens"].expand(len(x), -1, -1),
                        patches.flatten(2).transpose(1, 2)), dim=1)
    prefix = 1 + t["storage_tokens"].shape[1]
    # RopePositionEmbedding.forward, normalize_coords "separate", eval mode (no shift, jitter or rescale)
    coords_h, coords_w = torch.arange(0.5, h) / h, torch.arange(0.5, w) / w
    coords = 2 * torch.stack(torch.meshgrid(coords_h, coords_w, indexing="ij"), dim=-1).flatten(0, 1) - 1
    angles = (2 * math.pi * coords[:, :, None] / t["rope_embed.periods"][None, None, :]).flatten(1, 2).tile(2)
    sin, cos = torch.sin(angles), torch.cos(angles)

    def rope(z: torch.Tensor) -> torch.Tensor:  # rope_apply on the patch tokens, the prefix tokens untouched
        body = z[:, :, prefix:]
        half1, half2 = body.chunk(2, dim=-1)
        rotated = body * cos + torch.cat((-half2, half1), dim=-1) * sin
        return torch.cat((z[:, :, :prefix], rotated), dim=2)

    def norm(z: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(z, (dim,), t[f"{name}.weight"], t[f"{name}.bias"], eps=1e-5)  # layernormbf16

    depth = 1 + max(int(k.split(".")[1]) for k in t if k.startswith("blocks."))
    for i in range(depth):
        b = f"blocks.{i}."
        y = norm(tokens, b + "norm1")
        bias = t.get(b + "attn.qkv.bias")
        qkv = F.linear(y, t[b + "attn.qkv.weight"], None if bias is None else bias * t[b + "attn.qkv.bias_mask"])
        q, k, v = qkv.reshape(len(x), -1, 3, heads, dim // heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        attn = torch.softmax(rope(q) @ rope(k).transpose(-2, -1) / math.sqrt(dim // heads), dim=-1) @ v
        y = F.linear(attn.transpose(1, 2).reshape(len(x), -1, dim), t[b + "attn.proj.weight"], t[b + "attn.proj.bias"])
        tokens = tokens + y * t[b + "ls1.gamma"]
        y = norm(tokens, b + "norm2")
        if b + "mlp.w1.weight" in t:  # SwiGLUFFN
            y = F.silu(F.linear(y, t[b + "mlp.w1.weight"], t[b + "mlp.w1.bias"])) \
                * F.linear(y, t[b + "mlp.w2.weight"], t[b + "mlp.w2.bias"])
            y = F.linear(y, t[b + "mlp.w3.weight"], t[b + "mlp.w3.bias"])
        else:  # Mlp with exact GELU
            y = F.linear(F.gelu(F.linear(y, t[b + "mlp.fc1.weight"], t[b + "mlp.fc1.bias"])),
                         t[b + "mlp.fc2.weight"], t[b + "mlp.fc2.bias"])
        tokens = tokens + y * t[b + "ls2.gamma"]
    out = norm(tokens, "norm")
    return torch.cat((out[:, 0], out[:, prefix:].mean(dim=1)), dim=1)


def test_six_cards_gated_with_their_license_and_torch_hub_prefixes():
    assert sorted(c.id for c in CARDS) == sorted(f"dinov3-{s}" for s in HASHES)
    for card in CARDS:
        size = card.id.removeprefix("dinov3-")
        assert card.source.sha256_prefix == HASHES[size] and card.source.url.endswith(f"-{HASHES[size]}.pth")
        assert card.source.access and card.license == "DINOv3 License" and card.license_url.startswith("https://")
        assert card.features == {"n_last_blocks": 1, "patch_mean": "append"}
        assert (card.interpolation, card.input_size, card.preprocess.resize_size) == ("bicubic", 224, 256)
        assert card.published_top1 is None and "IN-ReaL" in card.notes  # no ImageNet-val figure is published
    head = next(c for c in CARDS if c.id == "dinov3-vit7b16").linear_head
    assert head.top1 is None and head.sha256_prefix == "90d8ed92" and head.access


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.id)
def test_the_official_layout_loads_strictly(card):
    """Keys and shapes of every size (ViT-7B included) on the meta device: nothing is allocated."""
    backbone, report = strict_load_on_meta(card, _official_layout(card.arch, device="meta"))
    assert report.missing == () and report.ignored == ()
    assert backbone.num_features == 2 * backbone.embed_dim
    # the timm model has the official sizes (the layout above is named from it, so check its widths independently)
    dim, depth, heads, ratio, align, qkv_bias = OFFICIAL[card.id.removeprefix("dinov3-")]
    block = backbone.blocks[0]
    assert (backbone.embed_dim, len(backbone.blocks), block.attn.num_heads) == (dim, depth, heads)
    if align:  # SwiGLUFFN: int(2/3 of dim * ffn_ratio), rounded up to the alignment
        hidden = int(dim * ratio * 2 / 3)
        hidden += -hidden % align
    else:
        hidden = dim * ratio
    assert block.mlp.fc2.in_features == hidden
    assert (getattr(block.attn, "q_bias", None) is not None) == qkv_bias


@pytest.mark.parametrize("card_id", ["dinov3-vits16", "dinov3-vits16plus"])  # GELU MLP and SwiGLU
def test_features_equal_the_official_recipe(card_id, tmp_path):
    card = next(c for c in CARDS if c.id == card_id)
    torch.manual_seed(0)
    official = _official_layout(card.arch)
    torch.save(official, tmp_path / "pretrain.pth")
    local = dataclasses.replace(card, source=dataclasses.replace(card.source, url=None, sha256_prefix=None,
                                                                 access=None, path=str(tmp_path / "pretrain.pth")))
    loaded = load_model(local, cache_dir=tmp_path)
    x = torch.rand(2, 3, 224, 224)
    normalized = (x - torch.tensor(card.mean).view(1, 3, 1, 1)) / torch.tensor(card.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = loaded.model.eval()(x)
        want = _reference_features(official, normalized, heads=6)
    assert ours.shape == want.shape == (2, 768)
    difference = (ours - want).abs().max().item()
    assert difference <= 1e-4, difference  # docs/zoo.md states the measured maximum
    # the RoPE runs with the file's (bfloat16-rounded) periods, not timm's own float32 ones
    periods = loaded.model.backbone.rope.periods
    assert torch.equal(periods, official["rope_embed.periods"].float())
    assert not torch.equal(periods, build_backbone(card.arch, **card.features).rope.periods)


def test_a_bias_mask_that_keeps_the_key_bias_is_refused():
    card = next(c for c in CARDS if c.id == "dinov3-vits16")
    with torch.device("meta"):
        backbone = build_backbone(card.arch, **card.features)
    official = _official_layout(card.arch)
    official["blocks.3.attn.qkv.bias_mask"] = torch.ones(3 * 384)
    with pytest.raises(UserError, match="blocks.3.attn.qkv.bias_mask does not mask exactly the key bias"):
        CHECKPOINT_FORMATS["dinov3"](official, backbone)
    official.pop("rope_embed.periods")
    official.pop("blocks.3.attn.qkv.bias_mask")
    with pytest.raises(UserError, match="rope_embed.periods"):
        CHECKPOINT_FORMATS["dinov3"](official, backbone)


def test_the_7b_released_head_reads_its_file(tmp_path):
    card = next(c for c in CARDS if c.id == "dinov3-vit7b16")
    weight, bias = torch.randn(1000, 8192), torch.randn(1000)
    torch.save({"weight": weight, "bias": bias}, tmp_path / "head.pth")  # hub/classifiers.py: an nn.Linear state
    local = dataclasses.replace(card, linear_head=dataclasses.replace(card.linear_head, url=None, sha256_prefix=None,
                                                                       access=None, path=str(tmp_path / "head.pth")))
    head, record = load_released_head(local, num_features=8192, num_classes=1000, cache_dir=tmp_path)
    assert torch.equal(head.weight, weight) and record["published_top1"] is None


def test_a_gated_download_says_where_the_emailed_file_goes(tmp_path, monkeypatch):
    from ssl_robustbench.zoo.loading import checkpoint_path

    card = next(c for c in CARDS if c.id == "dinov3-vits16")
    unreachable = dataclasses.replace(card, source=dataclasses.replace(card.source, url="http://127.0.0.1:9/"
                                                                       "dinov3_vits16_pretrain_lvd1689m-08c60483.pth"))
    with pytest.raises(UserError) as info:
        checkpoint_path(unreachable, cache_dir=tmp_path, quiet=True)
    message = str(info.value)
    assert card.source.access in message and "sha256 prefix 08c60483" in message
    assert str(tmp_path / "checkpoints" / "dinov3-vits16" / "dinov3_vits16_pretrain_lvd1689m-08c60483.pth") in message


def test_a_transformers_dinov3_scores_the_official_recipe(tmp_path):
    """``transformers/dinov3_vit`` (``facebook/dinov3-*`` repositories): the same features, from transformers' own
    model, with the RoPE periods the official checkpoints carry (bfloat16-rounded)."""
    transformers = pytest.importorskip("transformers", reason="the optional transformers extra")
    from ssl_robustbench.backbones.transformers_encoders import load_encoder

    torch.manual_seed(0)
    config = transformers.DINOv3ViTConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                          intermediate_size=128, image_size=48, patch_size=16, num_register_tokens=4)
    model = transformers.DINOv3ViTModel(config)
    for name, p in model.named_parameters():
        torch.nn.init.normal_(p, mean=1.0 if "lambda" in name else 0.0, std=0.25 if "_proj.weight" in name else 0.05)
    model.save_pretrained(tmp_path)
    w = model.state_dict()
    official = {"cls_token": w["embeddings.cls_token"], "storage_tokens": w["embeddings.register_tokens"],
                "patch_embed.proj.weight": w["embeddings.patch_embeddings.weight"],
                "patch_embed.proj.bias": w["embeddings.patch_embeddings.bias"],
                "norm.weight": w["norm.weight"], "norm.bias": w["norm.bias"],
                "rope_embed.periods": (100.0 ** (2 * torch.arange(4) / 8)).to(torch.bfloat16)}
    for i in range(3):
        t, b = f"model.layer.{i}.", f"blocks.{i}."
        attn = t + "attention."
        official |= {b + "attn.qkv.weight": torch.cat([w[attn + f"{p}_proj.weight"] for p in "qkv"]),
                     b + "attn.qkv.bias": torch.cat((w[attn + "q_proj.bias"], torch.zeros(64),
                                                     w[attn + "v_proj.bias"])),
                     b + "attn.qkv.bias_mask": torch.cat((torch.ones(64), torch.zeros(64), torch.ones(64))),
                     b + "attn.proj.weight": w[attn + "o_proj.weight"], b + "attn.proj.bias": w[attn + "o_proj.bias"],
                     b + "ls1.gamma": w[t + "layer_scale1.lambda1"], b + "ls2.gamma": w[t + "layer_scale2.lambda1"],
                     b + "mlp.fc1.weight": w[t + "mlp.up_proj.weight"], b + "mlp.fc1.bias": w[t + "mlp.up_proj.bias"],
                     b + "mlp.fc2.weight": w[t + "mlp.down_proj.weight"],
                     b + "mlp.fc2.bias": w[t + "mlp.down_proj.bias"]}
        official |= {b + f"norm{n}.{p}": w[t + f"norm{n}.{p}"] for n in (1, 2) for p in ("weight", "bias")}
    encoder = load_encoder(tmp_path, input_size=48)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        ours, want = encoder(x), _reference_features(official, x, heads=4)
    assert ours.shape == want.shape == (2, 128)
    assert (ours - want).abs().max().item() <= 1e-5
