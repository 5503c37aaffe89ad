"""``robustbench eval``: checkpoint → frozen features → linear probe → benchmark suites → results table.

Under ``torchrun`` every rank evaluates its shard of each condition (and of the probe's training features); counts
are summed over ranks, so the table equals a single-process run's wherever a condition is deterministic (clean,
perspective views, released trees); rank 0 fits the probe and writes the files.
The run directory gets ``config.yaml`` and ``environment.json`` before any work, then ``model.json`` (card,
checkpoint sha256, strict-load report), ``probe.safetensors``, and ``results.{csv,parquet,json}`` rewritten after
every finished condition, so a re-run with the same ``--out`` resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

import ssl_robustbench
from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.benchmarks.base import EvalContext
from ssl_robustbench.config import EvalConfig, protocol_hash
from ssl_robustbench.data import DataRequest, build_dataset, eval_loader
from ssl_robustbench.fileio import atomic_write_json, stable_hash
from ssl_robustbench.probes.features import cached_extract
from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint
from ssl_robustbench.probes.linear import FittedProbe, fit_linear_probe, load_probe, save_probe
from ssl_robustbench.progress import console
from ssl_robustbench.results import ResultRow, read_table, write_table
from ssl_robustbench.results.summary import plot_accuracy
from ssl_robustbench.runinfo import resolve_device, seed_everything, start_run
from ssl_robustbench.training import distributed as ddp
from ssl_robustbench.zoo import LoadedModel, load_model, resolve_card
from ssl_robustbench.zoo.download import cache_root

FEATURE_CACHE_VERSION = 1


@dataclasses.dataclass
class EvalRun:
    """What a finished ``run_eval`` leaves: the run directory, all rows, and the probe."""

    run_dir: Path
    rows: list[ResultRow]
    probe: FittedProbe
    loaded: LoadedModel


def fit_or_load_probe(
    loaded: LoadedModel, cfg: EvalConfig, *, run_dir: Path, device: torch.device, cache: Path, req: DataRequest,
    num_classes: int, probe_file: Path | None = None,
) -> FittedProbe:
    """Loads ``probe_file`` or the run's saved probe, else extracts (cached) train features and fits one."""
    num_features = loaded.model.backbone.num_features
    saved = run_dir / "probe.safetensors"
    if probe_file is not None or saved.is_file():
        return load_probe(probe_file or saved, num_features=num_features, num_classes=num_classes)
    train = build_dataset(cfg.data.name, req, limit=cfg.data.train_limit)
    key = stable_hash({"v": FEATURE_CACHE_VERSION, "sha256": loaded.sha256, "arch": loaded.card.arch,
                       "features": loaded.card.features, "preprocess": dataclasses.asdict(loaded.card.preprocess),
                       "data": dataclasses.asdict(req) | {"cache_dir": None, "preprocess": None},
                       "limit": cfg.data.train_limit, "dataset": cfg.data.name})
    feats, labels = cached_extract(loaded.model.features, train, lambda ds: eval_loader(ds, cfg.run), device=device,
                                   cache_file=cache / "features" / f"{key}.safetensors",
                                   description="train features")
    if ddp.rank() == 0:  # one process fits; under torchrun the others load what it saved
        probe = fit_linear_probe(feats, labels, num_classes=num_classes, cfg=cfg.probe, seed=cfg.run.seed)
        probe.record.update(feature_cache=key, probe_id=stable_hash({"features": key,
                                                                      "recipe": probe.record["recipe"],
                                                                      "seed": cfg.run.seed}))
        save_probe(saved, probe)
    ddp.barrier()
    return probe if ddp.rank() == 0 else load_probe(saved, num_features=num_features, num_classes=num_classes)


def run_eval(cfg: EvalConfig, *, run_dir: Path | None = None, probe_file: Path | None = None) -> EvalRun:
    """Runs every suite of ``cfg`` and returns the rows (also written to ``run_dir``, by default
    ``<run.out>/<model id>-<protocol hash[:8]>``)."""
    for suite in cfg.suites:  # unknown suites and bad suite settings fail before any work
        BENCHMARKS.get(suite)().check(cfg)
    device = ddp.setup(resolve_device(cfg.run.device))
    main = ddp.rank() == 0
    card = resolve_card(cfg.model, arch=cfg.arch)
    protocol = protocol_hash(cfg)
    run_dir = run_dir or Path(cfg.run.out) / f"{card.id}-{protocol[:8]}"
    if main:
        start_run(run_dir, cfg, device, extra={"protocol_hash": protocol},
                  env_extra={"world_size": ddp.world_size()})
    ddp.barrier()
    seed_everything(cfg.run.seed)
    cache = Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root()
    loaded = load_model(card, cache_dir=cache)
    card_record = dataclasses.asdict(card) | {"card_dir": str(card.card_dir)}
    if main:
        atomic_write_json(run_dir / "model.json", {"card": card_record, "checkpoint_sha256": loaded.sha256,
                                                   "load_report": dataclasses.asdict(loaded.report)})
    model = loaded.model.to(device)
    req = DataRequest(split=cfg.data.train_split, preprocess=card.preprocess,
                      root=Path(cfg.data.root) if cfg.data.root else None, download=cfg.data.download,
                      cache_dir=cache, seed=0)
    clean = build_dataset(cfg.data.name, dataclasses.replace(req, split=cfg.data.eval_split), limit=cfg.data.eval_limit)
    before = fingerprint(model.backbone)
    probe = fit_or_load_probe(loaded, cfg, run_dir=run_dir, device=device, cache=cache, req=req,
                              num_classes=len(clean.classes), probe_file=probe_file)
    assert_unchanged(model.backbone, before)
    model.head = probe.head.to(device)
    model.eval()
    rows = read_table(run_dir / "results.json") if (run_dir / "results.json").is_file() else []
    base = dict(model_id=card.id, method=card.method, arch=card.arch, seed=cfg.run.seed,
                probe_id=probe.record.get("probe_id", "external"), config_hash=protocol,
                version=ssl_robustbench.__version__)
    ctx = EvalContext(model=model, clean=clean, num_classes=len(clean.classes), input_size=card.input_size,
                      train=lambda: build_dataset(cfg.data.name, req, limit=cfg.data.train_limit), cfg=cfg,
                      device=device, run_dir=run_dir, preprocess=card.preprocess)
    for suite in cfg.suites:
        bench = BENCHMARKS.get(suite)()
        done = {(r.condition, r.severity): r.value for r in rows if r.suite == suite and r.metric == "top1"}
        for m in bench.measure(ctx, done=done):
            rows = [r for r in rows if (r.suite, r.condition, r.severity, r.metric) != (suite, m.condition,
                                                                                       m.severity, m.metric)]
            rows.append(ResultRow(**base, suite=suite, condition=m.condition, severity=m.severity, metric=m.metric,
                                  value=m.value, n=m.n, created_at=ResultRow.now()))
            if main:
                write_table(rows, run_dir)
    if main:
        write_table(rows, run_dir)
        plot_accuracy(rows, run_dir / "accuracy.png")
        console.print(f"run directory: {run_dir}")
    ddp.barrier()
    return EvalRun(run_dir=run_dir, rows=rows, probe=probe, loaded=loaded)
