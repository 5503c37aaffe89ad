"""Every public zoo card preprocesses as its method's official linear-evaluation script does.

The table below was read from each script (named per row); a card that drifts from it — a silent default, a
0.5 mean/std, the wrong interpolation — fails here, because every number the tool prints depends on it.
"""

import pytest

from ssl_robustbench.zoo import arch_preprocessing, list_cards, resolve_card, with_overrides

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
SWAV = ((0.485, 0.456, 0.406), (0.228, 0.224, 0.225))  # swav/eval_linear.py: std[0] is 0.228
MMSELFSUP = "open-mmlab/mmselfsup configs/benchmarks/classification/_base_/datasets/imagenet.py"

# card id: (mean/std, resize side, crop side, interpolation, official script)
OFFICIAL = {
    "barlowtwins-rn50-1000ep": (IMAGENET, 256, 224, "bilinear", "facebookresearch/barlowtwins evaluate.py"),
    "byol-rn50-200ep-mmselfsup": (IMAGENET, 256, 224, "bilinear", MMSELFSUP),
    "dino-rn50": (IMAGENET, 256, 224, "bicubic", "facebookresearch/dino eval_linear.py"),
    "dino-vits16": (IMAGENET, 256, 224, "bicubic", "facebookresearch/dino eval_linear.py"),
    "dino-vits16-full": (IMAGENET, 256, 224, "bicubic", "facebookresearch/dino eval_linear.py"),
    "mocov2-rn50-800ep": (IMAGENET, 256, 224, "bilinear", "facebookresearch/moco main_lincls.py"),
    "mocov3-rn50-1000ep": (IMAGENET, 256, 224, "bilinear", "facebookresearch/moco-v3 main_lincls.py"),
    "mocov3-vits16-300ep": (IMAGENET, 256, 224, "bilinear", "facebookresearch/moco-v3 main_lincls.py"),
    "simclr-rn50-200ep-mmselfsup": (IMAGENET, 256, 224, "bilinear", MMSELFSUP),
    "simsiam-rn50-100ep": (IMAGENET, 256, 224, "bilinear", "facebookresearch/simsiam main_lincls.py"),
    "swav-rn50-800ep": (SWAV, 256, 224, "bilinear", "facebookresearch/swav eval_linear.py"),
    "vicreg-rn50": (IMAGENET, 256, 224, "bilinear", "facebookresearch/vicreg evaluate.py"),
    **{card.id: (IMAGENET, 256, 224, "bicubic", "facebookresearch/dinov2 dinov2/data/transforms.py")
       for card in list_cards() if card.method == "dinov2"},
    **{f"mae-vit{s}": (IMAGENET, 256, 224, "bicubic", "facebookresearch/mae main_linprobe.py")
       for s in ("b16", "l16", "h14")},
    **{f"ibot-vit{s}": (IMAGENET, 256, 224, "bicubic", "bytedance/ibot evaluation/eval_linear.py")
       for s in ("s16", "b16", "l16")},
    **{f"msn-vit{s}": (IMAGENET, 256, 224, "bilinear", "facebookresearch/msn linear_eval.py")
       for s in ("s16", "b16", "l16")},
    **{f"webssl-dino{s}-224": (IMAGENET, 256, 224, "bicubic", "facebookresearch/webssl README")
       for s in ("300m-full2b", "1b-full2b", "2b-full2b", "3b-full2b", "5b-full2b", "7b-full8b")},
    "ijepa-vith14-in1k": (IMAGENET, 256, 224, "bilinear", "none published"),
    **{f"dinov3-vit{s}": (IMAGENET, 256, 224, "bicubic", "facebookresearch/dinov3 dinov3/eval/linear.py")
       for s in ("s16", "s16plus", "b16", "l16", "h16plus", "7b16")},
    **{f"data2vec2-vit{s}": (IMAGENET, 256, 224, "bicubic", "none published for linear evaluation")
       for s in ("b16", "l16", "h14")},
}
# published linear heads: card id -> (published top-1 %, head key prefix)
RELEASED_HEADS = {"dino-rn50": (75.3, "module.linear."), "mocov3-rn50-1000ep": (74.6, "module.fc."),
                  "mocov3-vits16-300ep": (73.2, "module.head."), "simsiam-rn50-100ep": (68.1, "module.fc."),
                  "swav-rn50-800ep": (75.3, "module.linear."), "dino-vits16": (77.0, "module.linear."),
                  # DINOv2 README "ImageNet linear", one per backbone (S, B, L, g; without / with registers)
                  **{f"dinov2-vit{size}14{reg}{layers}": (top1[bool(reg)], "")
                     for size, top1 in {"s": (81.1, 80.9), "b": (84.5, 84.6), "l": (86.3, 86.7),
                                        "g": (86.5, 87.1)}.items()
                     for reg in ("", "-reg4") for layers in ("", "-linear4")},
                  "dinov3-vit7b16": (None, "")}  # hub/classifiers.py; no ImageNet-val figure is published
PUBLIC = [c for c in list_cards() if not c.id.startswith("embedded-")]


def test_the_table_covers_every_public_card():
    assert {c.id for c in PUBLIC} == set(OFFICIAL)


@pytest.mark.parametrize("card", PUBLIC, ids=lambda c: c.id)
def test_public_card_matches_its_official_linear_eval_script(card):
    (mean, std), resize, crop, interpolation, script = OFFICIAL[card.id]
    assert card.mean == pytest.approx(mean) and card.std == pytest.approx(std)
    assert card.preprocess.resize_size == resize and card.input_size == crop
    assert card.interpolation == interpolation
    assert card.eval_script and card.eval_script.startswith(script), "the card must name its official script"


@pytest.mark.parametrize("card", PUBLIC, ids=lambda c: c.id)
def test_released_heads_are_named_with_their_published_top1(card):
    if card.id not in RELEASED_HEADS:
        assert card.linear_head is None
        return
    top1, prefix = RELEASED_HEADS[card.id]
    head = card.linear_head
    assert head is not None and head.top1 == top1 and head.prefix == prefix
    assert head.url.startswith("https://dl.fbaipublicfiles.com/") and head.source


def test_a_bare_timm_checkpoint_takes_the_models_pretrained_cfg(tmp_path):
    import timm

    ckpt = tmp_path / "vit.pth"
    ckpt.write_bytes(b"")
    card = resolve_card(str(ckpt), arch="timm/vit_small_patch16_224")
    cfg = timm.get_pretrained_cfg("vit_small_patch16_224").to_dict()
    assert card.mean == tuple(cfg["mean"]) and card.std == tuple(cfg["std"])
    assert card.crop_pct == cfg["crop_pct"] and card.interpolation == cfg["interpolation"]
    assert card.input_size == cfg["input_size"][-1]


def test_a_bare_torchvision_checkpoint_gets_the_imagenet_convention(tmp_path):
    ckpt = tmp_path / "r50.pth"
    ckpt.write_bytes(b"")
    card = resolve_card(str(ckpt), arch="torchvision/resnet50")
    assert (card.mean, card.std) == IMAGENET and card.preprocess.resize_size == 256
    assert arch_preprocessing("torchvision/resnet50")["interpolation"] == "bilinear"
    sized = with_overrides(card, input_size=160, ignore_keys=("fc\\..*",))
    assert sized.input_size == 160 and sized.preprocess.resize_size == 182  # floor(160 / 0.875), as timm
    assert sized.ignore_keys == ("fc\\..*",)


TIMM_MODELS = ["efficientnet_b0", "regnety_002", "vit_small_patch16_224", "deit_tiny_patch16_224",
               "eva02_tiny_patch14_224.mim_in22k", "resnet50", "convnext_tiny", "vit_base_patch16_384"]


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_archs_get_timms_own_eval_pixels(name):
    """``--arch timm/<name>`` gives the pixels of ``timm.data.create_transform(**resolve_data_config(...))`` on
    real photos (the frost photographs shipped with imagecorruptions): crop_pct 0.875, 0.9, 0.95 and 1.0."""
    import timm
    import torch
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from ssl_robustbench.preprocess import Preprocess
    from ssl_robustbench.transforms.corruptions.effects import frost_texture_files
    from ssl_robustbench.zoo import arch_preprocessing

    pretrained = timm.get_pretrained_cfg(name).to_dict()
    config = resolve_data_config({}, pretrained_cfg=pretrained)
    reference = create_transform(**config)
    ours = Preprocess(**{k: v for k, v in arch_preprocessing(f"timm/{name}").items()
                         if k in ("input_size", "crop_pct", "interpolation")}).transform(None)
    mean, std = torch.tensor(config["mean"]).view(3, 1, 1), torch.tensor(config["std"]).view(3, 1, 1)
    for path in frost_texture_files()[:3]:
        photo = Image.open(path).convert("RGB")
        want = (reference(photo) * std + mean) * 255
        got = ours(photo).float()
        assert got.shape == want.shape, (name, got.shape, want.shape)
        diff = (got - want).abs()
        assert diff.mean() < 0.6 and diff.max() <= 3.5, (name, path.name, float(diff.mean()), float(diff.max()))
