"""Loading zoo models: resolve a model reference, fetch its checkpoint, build the classifier with a strict load.

A model reference is a zoo id (``robustbench zoo list``), a path to a card YAML, ``hf-hub:<repo>@<revision>``, or a
checkpoint file plus an arch.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ssl_robustbench.backbones import ImageClassifier, build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import read_json, sha256_file
from ssl_robustbench.zoo import get_card
from ssl_robustbench.zoo.card import IMAGENET_MEAN, IMAGENET_STD, LinearHead, Source, ZooCard, load_card
from ssl_robustbench.zoo.checkpoint import (
    BN_BRANCHES,
    LoadReport,
    is_dual_bn_state,
    read_checkpoint,
    remap_keys,
    select_state_dict,
    strict_load,
)
from ssl_robustbench.zoo.download import cache_root, check_sha256, download
from ssl_robustbench.zoo.formats import CHECKPOINT_FORMATS
from ssl_robustbench.zoo.hub import PREFIX as HUB_PREFIX
from ssl_robustbench.zoo.hub import (
    commit_warning,
    hub_config,
    hub_file,
    preprocessing_of,
    transformers_preprocessing,
    weights_file,
)
from ssl_robustbench.zoo.hub import parse_reference as parse_hub_reference


def resolve_card(ref: str, *, arch: str | None = None) -> ZooCard:
    """Turns a model reference (zoo id, card path, ``hf-hub:<repo>@<revision>``, or checkpoint path + ``arch``)
    into a card."""
    if ref.startswith(HUB_PREFIX):
        return hub_card(ref)
    path = Path(ref).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"card file not found: {path}")
        return load_card(path, zoo_name=False)
    looks_like_file = path.suffix in (".safetensors", ".pth", ".pt", ".tar", ".ckpt") or os.sep in ref
    if not looks_like_file:
        return get_card(ref)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if not arch:
        raise UserError("a checkpoint file needs --arch (e.g. torchvision/resnet50, timm/vit_small_patch16_224)")
    model_id = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._") or "checkpoint"
    return ZooCard(id=model_id, arch=arch, method="unknown", paper="-", license="-", pretrain_data="unknown",
                   source=Source(path=str(path.resolve())), card_dir=path.parent, **arch_preprocessing(arch))


def hub_card(ref: str) -> ZooCard:
    """A card for ``hf-hub:<repo>@<revision>`` (a timm repository): architecture, preprocessing and classifier name
    from its ``config.json``, weights from its safetensors (or PyTorch) file at that revision."""
    repo, revision = parse_hub_reference(ref)
    commit_warning(repo, revision)
    config = hub_config(repo, revision)
    model_id = re.sub(r"[^a-z0-9._-]+", "-", f"hf-{repo}-{revision[:12]}".lower()).strip("-._")
    if "architecture" not in config:  # a transformers encoder (hub_config checked its model_type)
        return ZooCard(id=model_id, arch=f"transformers/{config['model_type']}", method="unknown", paper="-",
                       license="-", pretrain_data="unknown",
                       source=Source(hub=repo, revision=revision, filename="model.safetensors"),
                       notes=f"from hf-hub:{repo}@{revision} (config.json, preprocessor_config.json)",
                       **transformers_preprocessing(repo, revision))
    arch = f"timm/{config['architecture']}"
    cfg = config.get("pretrained_cfg") or {}
    classifier = cfg.get("classifier")
    return ZooCard(id=model_id, arch=arch, method="unknown", paper="-", license=str(cfg.get("license", "-")),
                   pretrain_data="unknown", source=Source(hub=repo, revision=revision,
                                                          filename=weights_file(repo, revision)),
                   ignore_keys=(rf"{re.escape(classifier)}\..*",) if isinstance(classifier, str) else (),
                   features=dict(config.get("model_args") or {}),
                   notes=f"from hf-hub:{repo}@{revision} (config.json's pretrained_cfg)",
                   **preprocessing_of(config, f"hf-hub:{repo}@{revision}"))


def arch_preprocessing(arch: str) -> dict:
    """The preprocessing a bare checkpoint of ``arch`` gets: a timm model's own ``pretrained_cfg`` (mean, std,
    input size, crop, interpolation); otherwise the ImageNet convention of torchvision's ResNets and every SSL
    linear-eval script (ImageNet mean/std, Resize 256 + CenterCrop 224, bilinear)."""
    family, _, variant = arch.partition("/")
    if family == "timm" and variant:
        import timm

        if not timm.is_model(variant):
            raise UserError(f"unknown timm model {variant!r}")
        pc = timm.get_pretrained_cfg(variant)
        cfg = pc.to_dict() if pc is not None else {}
        interp = cfg.get("interpolation", "bilinear")
        return {"mean": tuple(cfg.get("mean", IMAGENET_MEAN)), "std": tuple(cfg.get("std", IMAGENET_STD)),
                "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
                "crop_pct": float(cfg.get("crop_pct", 0.875)),
                "interpolation": interp if interp in ("bilinear", "bicubic", "nearest") else "bilinear"}
    return {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": 224, "crop_pct": 0.875,
            "interpolation": "bilinear"}



def with_overrides(card: ZooCard, *, ignore_keys: tuple[str, ...] = (), input_size: int | None = None,
                   checkpoint_key: str | None = None, strip_prefixes: tuple[str, ...] = ()) -> ZooCard:
    """``card`` with extra checkpoint keys to ignore (``--ignore-keys``) and another input side (``--input-size``;
    the resize side follows from the card's crop fraction)."""
    changes: dict = {}
    if ignore_keys:
        changes["ignore_keys"] = (*card.ignore_keys, *ignore_keys)
    if checkpoint_key is not None:
        changes["checkpoint_key"] = checkpoint_key
    if strip_prefixes:
        changes["strip_prefixes"] = (*card.strip_prefixes, *strip_prefixes)
    if input_size is not None:
        changes["input_size"] = input_size
    return dataclasses.replace(card, **changes) if changes else card


def checkpoint_path(card: ZooCard, *, cache_dir: Path | None = None, quiet: bool = False,
                    source: Source | LinearHead | None = None) -> Path:
    """Local path of the card's checkpoint (or of ``source``, e.g. its released linear head): the file beside the
    card, or a verified download in the cache."""
    source = source or card.source
    if getattr(source, "hub", None):
        return hub_file(source.hub, source.filename, revision=source.revision, sha256=source.pin,
                        what=f"{card.id} (hf-hub:{source.hub}@{source.revision}/{source.filename})")
    if source.path:
        path = (card.card_dir / source.path).resolve()
        if not path.is_file():
            raise UserError(f"checkpoint of {card.id} not found: {path}")
        return path
    name = source.url.rsplit("/", 1)[-1].split("?")[0] or "checkpoint"
    dest = (cache_dir or cache_root()) / "checkpoints" / card.id / name
    try:
        return download(source.url, dest, sha256=source.pin, quiet=quiet)
    except UserError as error:
        if not source.access or dest.is_file():
            raise
        raise UserError(f"{error}. {card.id}'s weights are behind a license form: accept it at {source.access}, "
                        f"download the e-mailed link for {name} (wget), and put the file at {dest} (its sha256 "
                        f"{'prefix ' if not source.sha256 else ''}{source.pin or '(none pinned)'} is checked)"
                        ) from None


def load_released_head(card: ZooCard, *, num_features: int, num_classes: int, cache_dir: Path | None = None
                       ) -> tuple[torch.nn.Linear, dict]:
    """The linear head the card's authors published (``linear_head``): fetched, checked for shape, as
    ``nn.Linear``; with its record (source, sha256, published top-1)."""
    spec = card.linear_head
    if spec is None:
        raise UserError(f"{card.id} has no released linear head (its card names none); use --head probe")
    path = checkpoint_path(card, cache_dir=cache_dir, source=spec)
    digest = sha256_file(path)
    check_sha256(digest, spec.pin, what=str(path))
    state = select_state_dict(read_fetched(path, spec), spec.checkpoint_key, where=f"{card.id} linear head")
    try:
        weight, bias = state[f"{spec.prefix}weight"], state[f"{spec.prefix}bias"]
    except KeyError:
        have = ", ".join(sorted(state)[:8])
        raise UserError(f"{card.id} linear head: no {spec.prefix}weight/bias in {path.name} (it has {have})") from None
    if tuple(weight.shape) != (num_classes, num_features) or tuple(bias.shape) != (num_classes,):
        raise UserError(f"{card.id} linear head is {tuple(weight.shape)} but backbone and data need "
                        f"({num_classes}, {num_features})")
    head = torch.nn.Linear(num_features, num_classes)
    with torch.no_grad():
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())
    record = {"kind": "released", "source": spec.source, "sha256": digest, "published_top1": spec.top1,
              "url": spec.url, "probe_id": f"released-{digest[:16]}"}
    return head, record


def read_fetched(path: Path, source: Source | LinearHead) -> object:
    """``read_checkpoint``; a downloaded file that cannot be read (an unpinned URL that served something else) is
    removed from the cache, so the next run fetches it again instead of failing on it forever."""
    try:
        return read_checkpoint(path)
    except UserError as error:
        if not source.url:
            raise
        Path(path).unlink(missing_ok=True)
        raise UserError(f"{error}; removed the downloaded file from the cache (the next run fetches it again)") \
            from None


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A built classifier (no head yet), its card, the checkpoint's sha256 and the strict-load report.
    ``dual_bn``: for a dual-BN checkpoint (card ``bn_branch``), the backbone's plain state dict through each branch
    (``normal``, ``pgd``) — what AFF's dual-BN finetuning starts from; None for single-BN checkpoints."""

    model: ImageClassifier
    card: ZooCard
    sha256: str
    report: LoadReport
    dual_bn: Mapping[str, Mapping[str, torch.Tensor]] | None = None


def load_model(card: ZooCard, *, cache_dir: Path | None = None, quiet: bool = False) -> LoadedModel:
    """Builds ``card.arch``, loads its checkpoint strictly and wraps it with the card's normalization."""
    path = checkpoint_path(card, cache_dir=cache_dir, quiet=quiet)
    digest = sha256_file(path)
    check_sha256(digest, card.source.pin, what=str(path))
    if card.arch.startswith("transformers/"):
        return _load_transformers(card, path, digest)
    backbone = build_backbone(card.arch, **card.features)
    raw = read_fetched(path, card.source)
    state = select_state_dict(raw, card.checkpoint_key, where=card.id)
    if state and all(k.startswith("module.") for k in state) and \
            not any(p.startswith("module.") for p in card.strip_prefixes):  # saved from DistributedDataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}

    def remap(branch: str | None) -> dict[str, torch.Tensor]:
        return remap_keys(state, strip_prefixes=card.strip_prefixes, keep_only_prefixed=card.keep_only_prefixed,
                          bn_branch=branch)

    dual = {b: remap(b) for b in BN_BRANCHES} if card.bn_branch and is_dual_bn_state(state) else None
    target = dual[card.bn_branch] if dual else remap(card.bn_branch)
    if card.checkpoint_format is not None:
        target = CHECKPOINT_FORMATS[card.checkpoint_format](target, backbone)
    report = strict_load(backbone, target,
                         ignore_keys=card.ignore_keys, allowed_missing=card.allowed_missing, where=card.id)
    model = ImageClassifier(backbone, mean=card.mean, std=card.std).eval()
    return LoadedModel(model=model, card=card, sha256=digest, report=report, dual_bn=dual)


def _load_transformers(card: ZooCard, path: Path, digest: str) -> LoadedModel:
    """A ``transformers/<model_type>`` card: the encoder built by transformers from the checkpoint's folder (its
    config.json beside the weights: fetched into the same Hub snapshot for a hub source)."""
    from ssl_robustbench.backbones.transformers_encoders import load_encoder

    if path.suffix != ".safetensors":
        raise UserError(f"{card.id}: a transformers encoder is read from safetensors only, not {path.name}")
    if card.source.hub:
        hub_file(card.source.hub, "config.json", revision=card.source.revision)
    model_type = card.arch.partition("/")[2]
    config = read_json(path.parent / "config.json", what="transformers config")
    if not isinstance(config, dict) or config.get("model_type") != model_type:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise UserError(f"{card.id}: {path.parent / 'config.json'} is model_type {found!r}, the "
                        f"card says {model_type!r}")
    backbone = load_encoder(path.parent, input_size=card.input_size, **card.features)
    model = ImageClassifier(backbone, mean=card.mean, std=card.std).eval()
    report = LoadReport(loaded=len(backbone.state_dict()), missing=(), ignored=())
    return LoadedModel(model=model, card=card, sha256=digest, report=report)
