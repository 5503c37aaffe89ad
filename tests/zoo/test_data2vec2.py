"""data2vec 2.0 cards (issue 42): ViT-B/16, ViT-L/16, ViT-H/14 from fairseq's released vision checkpoints.

The official layout (fairseq ``Data2VecMultiModel`` with the image modality: ``modality_encoders.IMAGE.{local_encoder
.proj, fixed_positional_encoder.positions, extra_tokens, context_encoder.norm, context_encoder.blocks, decoder}``,
the shared ``blocks``, the EMA teacher's ``_ema`` copy) is synthesized with random weights. Each card loads it
strictly, and its features must equal fairseq's forward written out here step by step from ``modalities/base.py``,
``modalities/images.py``, ``modalities/modules.py`` (``AltBlock`` with ``layer_norm_first`` false,
``AltAttention``) and ``data2vec2.py``, then the mean of the patch tokens."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
import torch.nn.functional as F
from meta_load import strict_load_on_meta

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo import list_cards, load_model
from ssl_robustbench.zoo.formats import CHECKPOINT_FORMATS

CARDS = [c for c in list_cards() if c.method == "data2vec2"]
#: config/v2/{base,large}_images_only_task.yaml, huge_images14_only_task.yaml: embed_dim, shared depth, num_heads,
#: the image encoder's prenet_depth and patch_size (mlp_ratio 4: Data2VecMultiConfig's default)
OFFICIAL = {"data2vec2-vitb16": (768, 10, 12, 2, 16), "data2vec2-vitl16": (1024, 24, 16, 0, 16),
            "data2vec2-vith14": (1280, 32, 16, 0, 14)}
IMAGE = "modality_encoders.IMAGE."


def _official_layout(arch: str, *, prenet: int, device: str = "cpu") -> dict:
    """A random fairseq data2vec 2.0 vision state dict (``model``) of the widths of timm's ``arch``."""
    with torch.device(device):
        vit = timm.create_model(arch.partition("/")[2], pretrained=False, num_classes=0)
    dim, patch, depth = vit.embed_dim, vit.patch_embed.patch_size[0], len(vit.blocks)

    def rand(*shape):
        return torch.randn(*shape, device=device) * 0.05

    state = {IMAGE + "local_encoder.proj.weight": rand(dim, 3, patch, patch),
             IMAGE + "local_encoder.proj.bias": rand(dim),
             IMAGE + "fixed_positional_encoder.positions": rand(1, vit.patch_embed.num_patches, dim),
             IMAGE + "extra_tokens": rand(1, 1, dim),
             IMAGE + "context_encoder.norm.weight": 1 + rand(dim), IMAGE + "context_encoder.norm.bias": rand(dim),
             IMAGE + "decoder.blocks.0.0.weight": rand(dim, 48, 3, 3), IMAGE + "decoder.proj.weight": rand(dim, dim),
             "_ema": {"blocks.0.attn.qkv.weight": rand(3 * dim, dim)}}
    for i in range(depth):
        block = f"{IMAGE}context_encoder.blocks.{i}." if i < prenet else f"blocks.{i - prenet}."
        hidden = 4 * dim
        state |= {block + "norm1.weight": 1 + rand(dim), block + "norm1.bias": rand(dim),
                  block + "attn.qkv.weight": rand(3 * dim, dim), block + "attn.qkv.bias": rand(3 * dim),
                  block + "attn.proj.weight": rand(dim, dim), block + "attn.proj.bias": rand(dim),
                  block + "norm2.weight": 1 + rand(dim), block + "norm2.bias": rand(dim),
                  block + "mlp.fc1.weight": rand(hidden, dim), block + "mlp.fc1.bias": rand(hidden),
                  block + "mlp.fc2.weight": rand(dim, hidden), block + "mlp.fc2.bias": rand(dim)}
    return state


def _reference_features(official: dict, x: torch.Tensor, heads: int, prenet: int) -> torch.Tensor:
    """fairseq's image forward (``features_only``, no mask) and the mean of the patch tokens."""
    dim = official[IMAGE + "extra_tokens"].shape[-1]
    w = official[IMAGE + "local_encoder.proj.weight"]
    tokens = F.conv2d(x, w, official[IMAGE + "local_encoder.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    tokens = tokens + official[IMAGE + "fixed_positional_encoder.positions"]  # contextualized_features
    tokens = torch.cat((official[IMAGE + "extra_tokens"].expand(len(x), -1, -1), tokens), dim=1)
    tokens = F.layer_norm(tokens, (dim,), official[IMAGE + "context_encoder.norm.weight"],
                          official[IMAGE + "context_encoder.norm.bias"], eps=1e-6)  # BlockEncoder, norm first
    shared = 1 + max(int(k.split(".")[1]) for k in official if k.startswith("blocks."))
    names = [f"{IMAGE}context_encoder.blocks.{i}." for i in range(prenet)] + [f"blocks.{i}." for i in range(shared)]
    for b in names:  # AltBlock, layer_norm_first False
        qkv = F.linear(tokens, official[b + "attn.qkv.weight"], official[b + "attn.qkv.bias"])
        q, k, v = qkv.reshape(len(x), -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        attn = ((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1, dtype=torch.float32)
        a = F.linear((attn @ v).transpose(1, 2).reshape(len(x), -1, dim), official[b + "attn.proj.weight"],
                     official[b + "attn.proj.bias"])
        tokens = F.layer_norm(tokens + a, (dim,), official[b + "norm1.weight"], official[b + "norm1.bias"], eps=1e-6)
        m = F.linear(F.gelu(F.linear(tokens, official[b + "mlp.fc1.weight"], official[b + "mlp.fc1.bias"])),
                     official[b + "mlp.fc2.weight"], official[b + "mlp.fc2.bias"])
        tokens = F.layer_norm(tokens + m, (dim,), official[b + "norm2.weight"], official[b + "norm2.bias"], eps=1e-6)
    return tokens[:, 1:].mean(dim=1)  # no final norm (layer_norm_first False); the patch tokens' mean


def test_three_cards_reference_unknown_with_the_fine_tuning_transform():
    assert sorted(c.id for c in CARDS) == ["data2vec2-vitb16", "data2vec2-vith14", "data2vec2-vitl16"]
    for card in CARDS:
        size = {"vitb16": "base", "vitl16": "large", "vith14": "huge"}[card.id.removeprefix("data2vec2-")]
        assert card.source.url == f"https://dl.fbaipublicfiles.com/fairseq/data2vec2/{size}_imagenet.pt"
        assert card.license == "CC-BY-NC" and card.checkpoint_key == "model" and card.features == {"pool": "avg"}
        assert "REFERENCE UNKNOWN" in card.notes and card.published_top1 is None
        assert (card.interpolation, card.input_size, card.preprocess.resize_size) == ("bicubic", 224, 256)


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.id)
def test_the_official_layout_loads_strictly(card):
    """Every size (ViT-H included) on the meta device, split into context-encoder and shared blocks as its config."""
    dim, depth, heads, prenet, patch = OFFICIAL[card.id]
    backbone, report = strict_load_on_meta(card, _official_layout(card.arch, prenet=prenet, device="meta"))
    assert (backbone.embed_dim, len(backbone.blocks), backbone.blocks[0].attn.num_heads) == (dim, prenet + depth, heads)
    assert backbone.patch_embed.patch_size == (patch, patch) and backbone.blocks[0].mlp.fc1.out_features == 4 * dim
    assert report.missing == () and report.ignored == ()
    assert backbone.num_features == backbone.embed_dim


@pytest.mark.parametrize("prenet", [2, 0])  # base_images_only_task.yaml's split, and all blocks shared
def test_features_equal_fairseqs_forward(prenet, tmp_path):
    card = next(c for c in CARDS if c.id == "data2vec2-vitb16")
    torch.manual_seed(0)
    official = _official_layout(card.arch, prenet=prenet)
    torch.save({"cfg": {"model": {"_name": "data2vec_multi", "depth": 12 - prenet}}, "model": official},
               tmp_path / "base_imagenet.pt")  # fairseq's checkpoint: cfg beside the model
    local = dataclasses.replace(card, source=dataclasses.replace(card.source, url=None,
                                                                 path=str(tmp_path / "base_imagenet.pt")))
    loaded = load_model(local, cache_dir=tmp_path)
    x = torch.rand(2, 3, 224, 224)
    normalized = (x - torch.tensor(card.mean).view(1, 3, 1, 1)) / torch.tensor(card.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ours, want = loaded.model.eval()(x), _reference_features(official, normalized, heads=12, prenet=prenet)
    assert ours.shape == want.shape == (2, 768)
    difference = (ours - want).abs().max().item()
    assert difference <= 1e-4, difference  # docs/zoo.md states the measured maximum


def test_a_checkpoint_with_alibi_or_another_modality_is_refused():
    card = CARDS[0]
    with torch.device("meta"):
        backbone = build_backbone(card.arch, **card.features)
    for extra in (IMAGE + "alibi_scale", "modality_encoders.AUDIO.local_encoder.proj.weight"):
        official = _official_layout(card.arch, prenet=2, device="meta")
        official[extra] = torch.zeros(1, device="meta")
        with pytest.raises(UserError, match="only the image encoder without ALiBi"):
            CHECKPOINT_FORMATS["data2vec2"](official, backbone)
    with pytest.raises(UserError, match="data2vec2 arch must be one of"):
        build_backbone("data2vec2/vit_small_patch16_224")
