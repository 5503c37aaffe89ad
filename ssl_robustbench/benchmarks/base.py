"""The Benchmark contract and the streaming accuracy loop every suite shares.

A suite is one self-contained plug-in: a ``Benchmark`` subclass registered in ``BENCHMARKS`` that declares its
config dataclass (``Config``, read from the YAML section ``section`` and ``--set <section>.<key>=…``), the CLI
options it adds to ``robustbench eval`` (``options``), its conditions as typed ``Condition`` objects, its summary
rows and aggregates, and what its result card must say about the run (``card_details``). Nothing else in the
package lists the suites.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ssl_robustbench import distributed as ddp
from ssl_robustbench.data import eval_loader, limited
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import stable_hash
from ssl_robustbench.progress import progress_bar, track
from ssl_robustbench.registry import Registry
from ssl_robustbench.results.evidence import image_evidence
from ssl_robustbench.suite_options import SHIFT_LIMIT, SUITE_OPTIONS, SuiteOption  # noqa: F401  (re-exported)

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One measured setting of a suite: ``key`` (its label in the results table, e.g. ``clean``, ``c:fog``,
    ``pd:left/black``), ``severity`` (0 = n/a) and ``params``, the typed settings the suite makes it from
    (corruption, view, background, attack, ε …). Labels are written, never parsed back: a suite reads ``params``.
    Two conditions are the same when key and severity are."""

    key: str
    severity: int = 0
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)


CLEAN = Condition("clean")


@dataclasses.dataclass
class EvalContext:
    """What a suite may use: the classifier (backbone + shared probe), the clean evaluation set, a builder of the
    train split (for finetuning protocols), the run's config and directory."""

    model: torch.nn.Module
    clean: Dataset
    train: Callable[[], Dataset]
    num_classes: int
    input_size: int
    cfg: Any  # the run's EvalConfig (eval_config builds its sections from this package: it depends on us, not back)
    device: torch.device
    run_dir: Path
    preprocess: Any = None  # the card's Preprocess (for released trees of photos)
    eval_data: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # dataset_identity(clean)
    dual_bn: Any = None  # a dual-BN checkpoint's two branches (LoadedModel.dual_bn), for AFF


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One number a suite measured (becomes a ResultRow); a measured condition carries its per-image
    ``evidence`` (``results.evidence.ImageEvidence``), a summary row none."""

    condition: str
    severity: int
    metric: str
    value: float
    n: int
    evidence: Any = dataclasses.field(default=None, compare=False, repr=False)


class Benchmark:
    """A suite of conditions. Each condition is either a dataset of its own (``dataset``) or an on-device
    transform of clean batches (``transform``); the defaults are the clean data, untouched. Suites that need more
    (attacks, finetuning) override ``measure``."""

    name: str = ""
    section: str | None = None  # the config section holding this suite's settings (they count in its hash)
    Config: type | None = None  # the section's frozen dataclass (values checked in its __post_init__)
    options: tuple[SuiteOption, ...] = ()  #: from ``suite_options.SUITE_OPTIONS[name]`` (light, for --help)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name in SUITE_OPTIONS:
            cls.options = SUITE_OPTIONS[cls.name]

    def settings(self, cfg: Any) -> Any:
        """This suite's config section of ``cfg`` (an instance of ``Config``)."""
        return getattr(cfg, self.section) if self.section else None

    def recorded_settings(self, cfg: Any) -> dict[str, Any]:
        """The section as plain data with released-tree roots reduced to "released" (what the protocol hash and
        the card record; empty for a suite without settings)."""
        from ssl_robustbench.config import _without_roots, to_dict

        return _without_roots(to_dict(self.settings(cfg))) if self.section else {}

    #: which clean top-1 this suite's Δ / drop subtracts (None: the suite has none); recorded on its cards
    clean_reference: str | None = "the suite's own clean condition: the same images, the same head"
    #: how a board shows this suite without repeating a number: the aggregate that already is the own clean
    #: top-1 (then no separate ``clean`` column), the condition that is (no column of its own), and whether the
    #: per-condition columns add anything the aggregates do not already show
    #: whether the suite scores every image of the evaluation set (validation then requires evidence of all of
    #: them, with the data identity's labels)
    covers_eval_set = False
    clean_aggregate: str | None = None
    clean_condition: str = "clean"
    condition_columns: bool = True

    def card_details(self, cfg: Any, ctx: EvalContext | None) -> dict[str, Any]:
        """What the result card records about this suite's run beyond the rows: the settings that ran
        (``recorded_settings``), which clean number its differences use, and suite-specific entries."""
        details: dict[str, Any] = {"settings": self.recorded_settings(cfg)}
        if self.clean_reference:
            details["clean_reference"] = self.clean_reference
        return details

    def sanity_flags(self, ctx: EvalContext) -> list[str]:
        """Warnings about this suite's numbers for the result card (default: none)."""
        return []

    def head(self, cfg: Any) -> dict[str, Any] | None:
        """The head this suite scores when it is not the shared probe / released head (e.g. an SLF finetune);
        None: the shared head."""
        return None

    def uses_probe(self, cfg: Any) -> bool:
        """Whether the suite scores the shared head (probe or released); False for suites that train their own."""
        return True

    def conditions(self, cfg: Any) -> list[Condition]:
        raise NotImplementedError

    def check(self, cfg: Any) -> None:
        """Validates the suite's settings in ``cfg`` before any work starts (raise UserError)."""

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """The suite's summary numbers, recomputable from its rows; ``rank_metric`` ranks the leaderboard."""
        values = [m.value for m in measured if m.metric == "top1"]
        return {"mean_top1": sum(values) / len(values)} if values else {}

    def measure(self, ctx: EvalContext, *, done: Mapping[tuple[str, int], float]) -> Iterator[Measurement]:
        """Yields the top-1 of every condition not in ``done`` (top-1 already measured per (condition, severity)),
        then the suite's summary rows (``summarize``)."""
        measured: dict[Condition, float] = {}
        todo = []
        for cond in self.conditions(ctx.cfg):
            if (cond.key, cond.severity) in done:
                measured[cond] = done[cond.key, cond.severity]
            else:  # under torchrun: this rank's shard
                images = self.dataset(cond, ctx)
                todo.append((cond, eval_loader(ddp.shard(images), ctx.cfg.run), len(images)))
        # one bar for the whole suite, naming the condition and severity being measured
        images = sum(total for _, _, total in todo)
        work = f"{len(todo)} conditions, {images:,} images"
        with progress_bar(total=sum(len(loader) for _, loader, _ in todo), description=self.name, work=work) as advance:
            for i, (cond, loader, total) in enumerate(todo, 1):
                label = cond.key + (f" severity {cond.severity}" if cond.severity else "")
                advance(0, description=f"{self.name} [{i}/{len(todo)}] {label}")
                preds, labels = predictions(ctx.model, loader, device=ctx.device, transform=self.transform(cond, ctx),
                                            seed=ctx.cfg.run.seed, on_batch=advance, classes=self.classes(cond, ctx))
                preds, labels = ddp.gather_shards(preds, total), ddp.gather_shards(labels, total)
                if total == 0:
                    raise UserError(f"condition {cond.key} of suite {self.name} has no images")
                evidence = image_evidence(cond.key, cond.severity, "pred", preds, labels, params=cond.params)
                measured[cond] = evidence.top1()
                yield Measurement(cond.key, cond.severity, "top1", measured[cond], total, evidence)
        first = self.conditions(ctx.cfg)[0]
        yield from self.summarize(measured, n=len(self.dataset(first, ctx)), data=ctx.eval_data)

    def rank_metrics(self) -> tuple[str, ...]:
        """The aggregates that rank this suite on the leaderboard, by priority (the suite's, never a card's)."""
        return ("mean_top1",)

    def rank_metric(self, aggregates: Mapping[str, float]) -> str | None:
        """The first of ``rank_metrics`` that ``aggregates`` holds (None: the card cannot be ranked)."""
        return next((m for m in self.rank_metrics() if m in aggregates), None)

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        """Summary rows computed from every condition's top-1 alone (default: none): ``n`` images of the suite's
        first condition, ``data`` the evaluation data's identity (``dataset_identity``). Validation calls it again
        on the top-1 that the card's evidence gives, so a summary row can never disagree with the per-image
        record."""
        return iter(())

    def ranked_columns(self, evidence: list[Any]) -> list[Any]:
        """The conditions (``ImageEvidence``) whose per-image results the ranking score averages: what neighbours
        on a board are compared on (McNemar). Default: every condition but ``clean``."""
        shifted = [e for e in evidence if e.key != CLEAN.key]
        return shifted or list(evidence)

    def own_clean(self, rows: list[Any]) -> float | None:
        """This card's clean top-1 on the same images with the same head (what ``Δ clean`` subtracts), or None."""
        return next((r.value for r in rows if r.condition == CLEAN.key and r.metric == "top1"), None)

    def reproduce(self, condition: Condition, ctx: EvalContext, positions: list[int]) -> tuple[Any, Any]:
        """Re-measures ``condition`` on the images at ``positions`` of its dataset (``robustbench verify``):
        (values as the evidence records them, labels), [k] tensors. Default: the predicted classes."""
        from ssl_robustbench.data import subset

        loader = eval_loader(subset(self.dataset(condition, ctx), positions), ctx.cfg.run)
        return predictions(ctx.model, loader, device=ctx.device, transform=self.transform(condition, ctx),
                           seed=ctx.cfg.run.seed, description=f"verify {condition.key}",
                           classes=self.classes(condition, ctx))

    def deterministic(self, condition: Condition, settings: Any) -> bool:
        """Whether re-running ``condition`` on a sample of its images must give the same per-image results (up
        to float noise); random corruptions and attacks are compared statistically instead."""
        return True

    def dataset(self, condition: Condition, ctx: EvalContext) -> Dataset:
        """The images of ``condition`` (default: the clean evaluation set)."""
        return ctx.clean

    def classes(self, condition: Condition, ctx: EvalContext) -> list[int] | None:
        """The classes whose logits compete for ``condition`` (a 200-class set's subset of the 1000), or None
        for all: the prediction is the best of those logits, as the released sets' own evaluation code does."""
        return None

    def transform(self, condition: Condition, ctx: EvalContext) -> BatchTransform | None:
        """A batched [B,3,H,W] → [B,3,H,W] transform in [0,1] pixel space, or None."""
        return None


class ReleasedOrOnTheFly(Benchmark):
    """A shift suite read from a released tree when its config section (``cfg.<name>``) has a ``root``, else made
    on the fly from the clean batches; clean is always made from the clean set. Both use the section's ``limit``.

    ``release_input``: on ImageNet-layout photos, clean and the on-the-fly conditions start from the released
    benchmark's input — PIL decode, ``Resize(256, bilinear)``, ``CenterCrop(224)``, uint8 (``release_view``) — and
    the (shifted) 224² image reaches the model as a released tree is read: center-cropped to its input size. A
    model's own resize (bicubic, another crop) never touches the images a shift is applied to, and a tree written
    by ``robustbench generate`` evaluates to the on-the-fly numbers."""

    release_input = False

    def released(self, root: Path, condition: Condition, ctx: EvalContext) -> Dataset:
        """The released images of ``condition`` under ``root``."""
        raise NotImplementedError

    def on_the_fly(self, condition: Condition, ctx: EvalContext) -> BatchTransform:
        """The batched transform that makes ``condition`` from clean images."""
        raise NotImplementedError

    def dataset(self, condition: Condition, ctx: EvalContext) -> Dataset:
        section = self.settings(ctx.cfg)
        from_clean = section.root is None or condition.key == CLEAN.key
        if from_clean and (view := self.release_view(ctx)) is not None:
            return limited(view, section.limit)
        if from_clean:
            return limited(ctx.clean, section.limit)
        return limited(self.released(Path(section.root), condition, ctx), section.limit)

    def release_view(self, ctx: EvalContext | None) -> Dataset | None:
        """The clean set with the released benchmark's input transform where this suite's images come from photos
        (``release_input``): its clean condition and its on-the-fly ones; else None (the model's own images)."""
        from ssl_robustbench.data.shift_trees import release_view

        if not self.release_input or ctx is None:
            return None
        return release_view(ctx.clean)

    def card_details(self, cfg: Any, ctx: EvalContext | None) -> dict[str, Any]:
        details = super().card_details(cfg, ctx)
        if self.release_view(ctx) is not None:
            details["input"] = ("the release's: PIL Resize(256, bilinear) + CenterCrop(224), then the shift (or "
                                "none: clean), then a center crop to the model's input (as a released tree is read)")
        return details

    def recorded_settings(self, cfg: Any) -> dict[str, Any]:
        """The section's settings; for a tree written by ``robustbench generate``, also its manifest (what made
        it: parameters, sizes, encoding), so generated trees of other parameters never hash alike."""
        from ssl_robustbench.data.generate import read_manifest

        settings = super().recorded_settings(cfg)
        root = self.settings(cfg).root
        manifest = read_manifest(Path(root)) if root is not None else None
        if manifest is not None:
            settings["tree_manifest"] = manifest
        return settings

    def transform(self, condition: Condition, ctx: EvalContext) -> BatchTransform | None:
        from_clean = self.settings(ctx.cfg).root is None or condition.key == CLEAN.key
        made = self.on_the_fly(condition, ctx) if from_clean and condition.key != CLEAN.key else None
        if not from_clean or self.release_view(ctx) is None:
            return made
        from torchvision.transforms.v2 import CenterCrop

        crop = CenterCrop(ctx.input_size)
        return (lambda x, g: crop(made(x, g))) if made is not None else (lambda x, g: crop(x))


BENCHMARKS: Registry[type[Benchmark]] = Registry("benchmark")
#: the datasets read from photo folders (``release_view`` applies to them)
PHOTO_FOLDERS = ("imagenet", "imagefolder")
#: the protocol entry of on-the-fly shifts made from the released input (earlier cards shifted the model's input)
RELEASE_INPUT = "PIL Resize(256, bilinear) + CenterCrop(224), shift, center crop to the model's input"


def protocol_hash(cfg: Any, suite: str, *, eval_data: dict[str, Any], train_data: dict[str, Any] | None) -> str:
    """The protocol of one suite's rows: what must match for two models' numbers to be compared. Data by identity
    (``dataset_identity``: kind, size, classes, file-list digest — never the path), the scored head (the probe
    recipe and its training data, the released head, or the suite's own head with its recipe — an SLF/ALF/AFF
    recipe file's contents, not only its name), the suite's own config section (released-tree roots reduced to
    "released"), and the seed. Other suites run in the same eval do not count."""
    bench = BENCHMARKS.get(suite)()
    proto: dict[str, Any] = {"suite": suite, "dataset": cfg.data.name, "eval_split": cfg.data.eval_split,
                             "eval_data": eval_data, "seed": cfg.run.seed, "input_size": cfg.input_size}
    scores_shared_head = bench.uses_probe(cfg)
    if scores_shared_head:
        proto["head"] = cfg.head
        if cfg.head == "probe":
            proto["probe"] = cfg.probe.recipe()
        elif cfg.head == "knn":
            proto["knn"] = cfg.knn.recipe()
    else:
        proto["own_head"] = bench.head(cfg)  # e.g. the SLF/ALF/AFF recipe read from its YAML file
    if not (scores_shared_head and cfg.head == "released"):  # a head is trained on the train split
        proto.update(train_split=cfg.data.train_split, train_data=train_data)
    if bench.section:
        proto[bench.section] = bench.recorded_settings(cfg)
    if getattr(bench, "release_input", False) and cfg.data.name in PHOTO_FOLDERS:
        proto["input"] = RELEASE_INPUT  # clean and on-the-fly shifts of photos start from the release's 224² input
    return stable_hash(proto)


@torch.inference_mode()
def predictions(
    model: torch.nn.Module, loader: DataLoader, *, device: torch.device, transform: BatchTransform | None = None,
    seed: int = 0, description: str = "eval", on_batch: Callable[[], None] | None = None,
    classes: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Streams ``loader`` through ``transform`` and ``model``; returns the predicted classes and the labels ([N]
    int64 CPU tensors, in loader order). ``on_batch``: called after each batch (a caller's progress bar), else the
    loop shows its own bar. ``classes``: only these logits compete (the prediction is still a class index)."""
    g = torch.Generator(device=device).manual_seed(seed)
    subset = torch.as_tensor(classes, device=device) if classes is not None else None
    preds, labels = [], []
    batches = loader if on_batch is not None else track(loader, total=len(loader), description=description)
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        if transform is not None:
            x = transform(x, g)
        logits = model(x)
        preds.append((logits.argmax(1) if subset is None else subset[logits[:, subset].argmax(1)]).cpu())
        labels.append(torch.as_tensor(y).long().cpu())
        if on_batch is not None:
            on_batch()
    empty = torch.zeros(0, dtype=torch.long)
    return (torch.cat(preds) if preds else empty), (torch.cat(labels) if labels else empty)


def top1_accuracy(
    model: torch.nn.Module, loader: DataLoader, *, device: torch.device, transform: BatchTransform | None = None,
    seed: int = 0, description: str = "eval", on_batch: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """(correct, total) of ``predictions``."""
    preds, labels = predictions(model, loader, device=device, transform=transform, seed=seed,
                                description=description, on_batch=on_batch)
    return int((preds == labels).sum()), len(labels)
