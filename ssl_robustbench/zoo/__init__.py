"""The model zoo: find a card, fetch its checkpoint, build the classifier with a strict load.

A model reference is a zoo id (``robustbench zoo list``), a path to a card YAML, or a checkpoint file plus an arch.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ssl_robustbench.backbones import ImageClassifier, build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import sha256_file
from ssl_robustbench.registry import unknown_name_message
from ssl_robustbench.zoo.card import Source, ZooCard, load_card
from ssl_robustbench.zoo.checkpoint import LoadReport, read_checkpoint, remap_keys, select_state_dict, strict_load
from ssl_robustbench.zoo.download import cache_root, check_sha256, download


def zoo_dir() -> Path:
    """``$SSL_ROBUSTBENCH_ZOO``, else the ``model_zoo/`` folder of this source tree."""
    env = os.environ.get("SSL_ROBUSTBENCH_ZOO")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "model_zoo"


def list_cards(directory: Path | None = None) -> list[ZooCard]:
    """Every card in the zoo folder, validated, sorted by id."""
    directory = directory or zoo_dir()
    return sorted((load_card(p) for p in directory.glob("*.yaml")), key=lambda c: c.id)


def get_card(model_id: str, directory: Path | None = None) -> ZooCard:
    """The card with ``model_id``; unknown ids get close-name suggestions."""
    directory = directory or zoo_dir()
    path = directory / f"{model_id}.yaml"
    if not path.is_file():
        raise UserError(unknown_name_message("zoo model", model_id, [p.stem for p in directory.glob("*.yaml")]))
    return load_card(path)


def resolve_card(ref: str, *, arch: str | None = None) -> ZooCard:
    """Turns a model reference (zoo id, card path, or checkpoint path + ``arch``) into a card."""
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
    return ZooCard(id=model_id, arch=arch, method="unknown", paper="-", license="-",
                   source=Source(path=str(path.resolve())), card_dir=path.parent)


def checkpoint_path(card: ZooCard, *, cache_dir: Path | None = None, quiet: bool = False) -> Path:
    """Local path of the card's checkpoint: the file beside the card, or a verified download in the cache."""
    if card.source.path:
        path = (card.card_dir / card.source.path).resolve()
        if not path.is_file():
            raise UserError(f"checkpoint of {card.id} not found: {path}")
        return path
    name = card.source.url.rsplit("/", 1)[-1].split("?")[0] or "checkpoint"
    dest = (cache_dir or cache_root()) / "checkpoints" / card.id / name
    return download(card.source.url, dest, sha256=card.source.sha256, quiet=quiet)


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A built classifier (no head yet), its card, the checkpoint's sha256 and the strict-load report."""

    model: ImageClassifier
    card: ZooCard
    sha256: str
    report: LoadReport


def load_model(card: ZooCard, *, cache_dir: Path | None = None, quiet: bool = False) -> LoadedModel:
    """Builds ``card.arch``, loads its checkpoint strictly and wraps it with the card's normalization."""
    path = checkpoint_path(card, cache_dir=cache_dir, quiet=quiet)
    digest = sha256_file(path)
    check_sha256(digest, card.source.sha256, what=str(path))
    backbone = build_backbone(card.arch, **card.features)
    raw = read_checkpoint(path)
    state = select_state_dict(raw, card.checkpoint_key, where=card.id)
    state = remap_keys(state, strip_prefixes=card.strip_prefixes, keep_only_prefixed=card.keep_only_prefixed,
                       bn_branch=card.bn_branch)
    report = strict_load(backbone, state, ignore_keys=card.ignore_keys, allowed_missing=card.allowed_missing,
                         where=card.id)
    model = ImageClassifier(backbone, mean=card.mean, std=card.std).eval()
    return LoadedModel(model=model, card=card, sha256=digest, report=report)
