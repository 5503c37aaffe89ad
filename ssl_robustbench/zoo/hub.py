"""The Hugging Face Hub as a checkpoint source: a card's ``source: {hub: <repo>, revision: <commit>, filename}``
or a command line's ``--model hf-hub:<repo>@<revision>`` (timm's naming).

Files are fetched with ``huggingface_hub.hf_hub_download`` into the Hub's own cache (``HF_HOME`` /
``HF_HUB_CACHE``), from ``HF_ENDPOINT`` when set (a mirror), never over the network when ``HF_HUB_OFFLINE`` is set;
a token for gated repositories comes from ``HF_TOKEN`` or ``huggingface-cli login`` as usual. Each file's sha256 is
checked against the card's pin. ``hf-hub:`` without a card works for timm repositories whose ``config.json``
carries the model's preprocessing (``pretrained_cfg``: mean, std, input size, crop, interpolation); a repository
whose config lacks mean or std is refused, as a bare checkpoint is (no silent ImageNet default).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError, warn
from ssl_robustbench.fileio import read_json, sha256_file

PREFIX = "hf-hub:"
COMMIT = re.compile(r"[0-9a-f]{40}")
REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def parse_reference(ref: str) -> tuple[str, str]:
    """``hf-hub:<owner>/<name>@<revision>`` → (repo, revision); the revision is required (a moving branch would
    change the model under a result), a commit hash recommended."""
    body = ref.removeprefix(PREFIX)
    repo, sep, revision = body.partition("@")
    if not REPO.fullmatch(repo) or ".." in repo:
        raise UserError(f"{ref!r} is not hf-hub:<owner>/<name>@<revision>")
    if not sep or not revision:
        raise UserError(f"{ref!r} names no revision: pin one, hf-hub:{repo}@<commit> (the commit hash is on the "
                        "repository's 'Files and versions' page, or huggingface_hub.model_info(repo).sha)")
    return repo, revision


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_file(repo: str, filename: str, *, revision: str, sha256: str | None = None, what: str | None = None) -> Path:
    """A file of ``repo`` at ``revision`` in the Hub's cache (downloaded if missing), its sha256 checked against
    ``sha256`` (a full digest or a prefix; None: unchecked, with a warning). Every way it can fail is a UserError
    that says what to do."""
    from huggingface_hub import errors as hub_errors
    from huggingface_hub import hf_hub_download

    what = what or f"{repo}@{revision}/{filename}"
    try:
        path = Path(hf_hub_download(repo, filename, revision=revision, endpoint=os.environ.get("HF_ENDPOINT") or None,
                                    local_files_only=_offline()))
    except hub_errors.GatedRepoError:
        raise UserError(f"{repo} is gated: accept its license at https://huggingface.co/{repo} and log in "
                        "(huggingface-cli login, or HF_TOKEN)") from None
    except hub_errors.RepositoryNotFoundError:
        raise UserError(f"no Hub repository {repo} (or it is private: log in with huggingface-cli login or "
                        "HF_TOKEN)") from None
    except hub_errors.RevisionNotFoundError:
        raise UserError(f"{repo} has no revision {revision!r}") from None
    except hub_errors.LocalEntryNotFoundError as err:  # (a subclass of EntryNotFoundError: caught first)
        why = "HF_HUB_OFFLINE is set" if _offline() else str(err).split(". ")[0]
        raise UserError(f"{what} is not in the Hub cache and cannot be downloaded ({why})") from None
    except hub_errors.EntryNotFoundError:
        raise UserError(f"{repo}@{revision} has no file {filename!r}") from None
    except (hub_errors.HfHubHTTPError, OSError) as err:
        raise UserError(f"cannot download {what}: {str(err).splitlines()[0]}") from None
    digest = sha256_file(path)
    if sha256 is None:
        warn(f"no sha256 pinned for {what}; its digest {digest} is recorded in the run's model.json")
    elif not digest.startswith(sha256.lower()):
        raise UserError(f"sha256 mismatch for {what}: expected {sha256}, got {digest} (the file in the Hub cache "
                        f"at {path} is not the one the card pins)")
    return path


def hub_config(repo: str, revision: str) -> dict[str, Any]:
    """The repository's timm ``config.json``: architecture and pretrained_cfg."""
    config = read_json(hub_file(repo, "config.json", revision=revision), what=f"hf-hub:{repo}@{revision} config")
    from ssl_robustbench.backbones.transformers_encoders import SUPPORTED

    if not isinstance(config, dict) or not (isinstance(config.get("architecture"), str)
                                            or config.get("model_type") in SUPPORTED):
        raise UserError(f"{repo}@{revision}/config.json names neither a timm 'architecture' nor a transformers "
                        f"model_type with a linear-evaluation recipe ({', '.join(SUPPORTED)})")
    return config


def transformers_preprocessing(repo: str, revision: str) -> dict[str, Any]:
    """A transformers repository's ``preprocessor_config.json`` as a card's preprocessing (Resize shortest edge +
    CenterCrop); image_mean, image_std, size and crop_size must be stated."""
    from ssl_robustbench.zoo.card import checked_preprocessing

    where = f"hf-hub:{repo}@{revision}/preprocessor_config.json"
    cfg = read_json(hub_file(repo, "preprocessor_config.json", revision=revision), what=where)
    if not isinstance(cfg, dict):
        raise UserError(f"{where} is not a JSON object")
    missing = [k for k in ("image_mean", "image_std", "size", "crop_size") if k not in cfg]
    if missing:
        raise UserError(f"{where} states no {', '.join(missing)}; write a card that states them instead of guessing")
    edge, crop = cfg["size"].get("shortest_edge"), cfg["crop_size"].get("height")
    if not isinstance(edge, int) or not isinstance(crop, int) or crop != cfg["crop_size"].get("width") or crop > edge:
        raise UserError(f"{where}: size {cfg['size']} and crop_size {cfg['crop_size']} are not a shortest-edge "
                        "resize and a square center crop")
    interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(cfg.get("resample", 3))
    if interpolation is None:
        raise UserError(f"{where}: resample {cfg.get('resample')!r} is not nearest (0), bilinear (2) or bicubic (3)")
    values = {"mean": cfg["image_mean"], "std": cfg["image_std"], "input_size": crop, "crop_pct": crop / edge,
              "interpolation": interpolation}
    return checked_preprocessing(values, fail=lambda message: UserError(f"{where}: {message}"))


def preprocessing_of(config: dict[str, Any], where: str) -> dict[str, Any]:
    """A timm config's pretrained_cfg as a card's preprocessing; mean and std must be stated."""
    cfg = config.get("pretrained_cfg") or {}
    missing = [k for k in ("mean", "std", "input_size", "interpolation") if k not in cfg]
    if missing:
        raise UserError(f"{where}: its pretrained_cfg states no {', '.join(missing)}; write a card that states "
                        "them (model_zoo/README.md) instead of guessing")
    from timm.data import DEFAULT_CROP_PCT  # timm's own default where a config states no crop

    from ssl_robustbench.zoo.card import checked_preprocessing

    size = cfg["input_size"]
    if not isinstance(size, list) or len(size) != 3 or size[1] != size[2]:
        raise UserError(f"{where}: input_size {size!r} is not a square [3, H, H]")
    values = {"mean": cfg["mean"], "std": cfg["std"], "input_size": size[-1],
              "crop_pct": cfg.get("crop_pct", DEFAULT_CROP_PCT), "interpolation": cfg["interpolation"]}
    return checked_preprocessing(values, fail=lambda message: UserError(f"{where}: config.json's {message}"))


def weights_file(repo: str, revision: str) -> str:
    """The repository's weight file name (safetensors first), from the files the revision lists."""
    from huggingface_hub import HfApi

    if _offline():
        return WEIGHT_FILES[0]
    try:
        files = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).list_repo_files(repo, revision=revision)
    except Exception:  # noqa: BLE001 - a listing is a convenience; the download names what fails
        return WEIGHT_FILES[0]
    return next((name for name in WEIGHT_FILES if name in files), WEIGHT_FILES[0])


def commit_warning(repo: str, revision: str) -> None:
    if not COMMIT.fullmatch(revision):
        warn(f"hf-hub:{repo}@{revision} is a branch or tag, which can move: pin the commit hash for a result "
             "that can be reproduced")
