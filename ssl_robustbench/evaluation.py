"""``robustbench eval``: checkpoint → frozen features → linear probe → benchmark suites → results table.

Under ``torchrun`` every rank evaluates its shard of each condition (and of the probe's training features); counts
are summed over ranks, so the table equals a single-process run's wherever a condition is deterministic (clean,
perspective views, released trees); rank 0 fits the probe and writes the files.
The run directory gets ``config.yaml`` and ``environment.json`` before any work, then ``model.json`` (card,
checkpoint sha256, strict-load report), ``probe.safetensors`` (or, with ``--head released``, the published head
and ``head_check.json``), ``protocol.json`` (each suite's protocol hash and the data identities behind it), and
``results.{csv,parquet,json}`` rewritten after every finished condition, so a re-run with the same ``--out``
resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

import ssl_robustbench
from ssl_robustbench import distributed as ddp
from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.benchmarks.base import EvalContext, protocol_hash
from ssl_robustbench.config import config_hash
from ssl_robustbench.data import (
    DataRequest,
    build_dataset,
    dataset_identity,
    eval_loader,
    head_classes,
    label_fraction_subset,
)
from ssl_robustbench.errors import UserError
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, stable_hash
from ssl_robustbench.probes.feature_store import extract_to_store
from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint
from ssl_robustbench.probes.linear import FittedProbe, fit_linear_probe, load_probe, save_probe
from ssl_robustbench.progress import console
from ssl_robustbench.results import ResultRow, read_table, write_table
from ssl_robustbench.results.card import (
    Head,
    ModelIdentity,
    Protocol,
    ResultCard,
    aggregate,
    image_set,
    parse_card,
    protocol_digest,
)
from ssl_robustbench.results.evidence import read_evidence
from ssl_robustbench.results.evidence import to_bytes as evidence_bytes
from ssl_robustbench.results.summary import plot_accuracy
from ssl_robustbench.runinfo import resolve_device, seed_everything, start_run
from ssl_robustbench.zoo import LoadedModel, load_model, load_released_head, resolve_card, with_overrides
from ssl_robustbench.zoo.card import ZooCard
from ssl_robustbench.zoo.download import cache_root

FEATURE_CACHE_VERSION = 2
RELEASED_HEAD_TOLERANCE = 0.5  # points of top-1 between a released head's published and measured clean accuracy


@dataclasses.dataclass
class EvalRun:
    """What a finished ``run_eval`` leaves: the run directory, all rows, and the head that was scored."""

    run_dir: Path
    rows: list[ResultRow]
    probe: FittedProbe
    loaded: LoadedModel


def labelled_train_set(cfg: EvalConfig, req: DataRequest) -> Dataset:
    """The training images every head is fitted on: ``data.train_limit`` images, then ``label_fraction`` of their
    labels (class-balanced)."""
    return label_fraction_subset(build_dataset(cfg.data.name, req, limit=cfg.data.train_limit), cfg.label_fraction)


def fit_or_load_probe(
    loaded: LoadedModel, cfg: EvalConfig, *, run_dir: Path, device: torch.device, cache: Path, req: DataRequest,
    num_classes: int, probe_file: Path | None = None,
) -> FittedProbe:
    """Loads ``probe_file`` or the run's saved probe, else extracts train features into the on-disk feature store
    (fp16, keyed by model + data identity + preprocessing) and fits one on it, chunk by chunk."""
    num_features = loaded.model.backbone.num_features
    saved = run_dir / "probe.safetensors"
    if probe_file is not None or saved.is_file():
        return load_probe(probe_file or saved, num_features=num_features, num_classes=num_classes)
    store, key, train_data = train_features(loaded, cfg, device=device, cache=cache, req=req)
    if ddp.rank() == 0:  # one process fits; under torchrun the others load what it saved
        probe = fit_linear_probe(store, num_classes=num_classes, cfg=cfg.probe, seed=cfg.run.seed,
                                 device=device)
        probe.record.update(feature_cache=key, train_data=train_data,
                            probe_id=stable_hash({"features": key, "recipe": probe.record["recipe"],
                                                  "seed": cfg.run.seed}))
        save_probe(saved, probe)
    ddp.barrier()
    return probe if ddp.rank() == 0 else load_probe(saved, num_features=num_features, num_classes=num_classes)


def train_features(loaded: LoadedModel, cfg: EvalConfig, *, device: torch.device, cache: Path, req: DataRequest,
                   dtype: str = "float16"):
    """The training split's frozen features in the on-disk store (``dtype``: fp16 for the probe, float32 for the
    k-NN head; keyed by model + data identity + preprocessing; extracted once): (store, its key, the training
    data's identity)."""
    train = labelled_train_set(cfg, req)
    train_data = dataset_identity(train)
    key = stable_hash({"v": FEATURE_CACHE_VERSION, "sha256": loaded.sha256, "arch": loaded.card.arch,
                       "features": loaded.card.features, "preprocess": dataclasses.asdict(loaded.card.preprocess),
                       "mean": loaded.card.mean, "std": loaded.card.std, "bn_branch": loaded.card.bn_branch,
                       "data": train_data, **({"dtype": dtype} if dtype != "float16" else {})})
    store = extract_to_store(loaded.model.features, train, lambda ds: eval_loader(ds, cfg.run), device=device,
                             folder=cache / "features" / key, description="train features", dtype=dtype)
    return store, key, train_data


def knn_head(loaded: LoadedModel, cfg: EvalConfig, *, device: torch.device, cache: Path, req: DataRequest,
             num_classes: int) -> FittedProbe:
    """DINO's weighted k-NN over the training features as the scored head (``probes/knn.py``); nothing is
    fitted, so the head is the store itself, named by its key in the record. Its store holds float32 features,
    as DINO's ``eval_knn.py`` compares them: float16 rows reorder near-tied neighbours."""
    from ssl_robustbench.probes.knn import KNNHead

    store, key, train_data = train_features(loaded, cfg, device=device, cache=cache, req=req, dtype="float32")
    head = KNNHead(store, num_classes=num_classes, k=cfg.knn.k, temperature=cfg.knn.temperature,
                   chunk_rows=cfg.knn.chunk_rows)
    recipe = cfg.knn.recipe()
    return FittedProbe(head=head, record={"recipe": recipe, "feature_cache": key, "train_data": train_data,
                                          "probe_id": stable_hash({"features": key, "recipe": recipe})})


def released_head(loaded: LoadedModel, *, cache: Path, num_classes: int) -> FittedProbe:
    """The card's published linear head as the scored head (no probe is fitted)."""
    head, record = load_released_head(loaded.card, num_features=loaded.model.backbone.num_features,
                                      num_classes=num_classes, cache_dir=cache)
    return FittedProbe(head=head, record=record)


def check_released_top1(rows: list[ResultRow], probe: FittedProbe, cfg: EvalConfig, run_dir: Path) -> None:
    """Compares the clean top-1 of a released head with its published number (only on the full ImageNet-1k val
    set, where they are comparable); writes ``head_check.json`` and warns beyond the tolerance."""
    clean = next((r for r in rows if r.suite == "clean" and r.metric == "top1"), None)
    published = probe.record.get("published_top1")
    if clean is None or probe.record.get("kind") != "released":
        return
    if published is None:
        console.print("released head: its authors publish no ImageNet-1k val top-1 to compare with (the card's "
                      "linear_head.source says what they publish)")
        return
    comparable = cfg.data.name == "imagenet" and cfg.data.eval_split == "val" and clean.n == 50000
    diff = 100 * clean.value - published
    check = {"published_top1": published, "measured_top1": round(100 * clean.value, 3), "n": clean.n,
             "comparable": comparable, "difference": round(diff, 3), "tolerance": RELEASED_HEAD_TOLERANCE,
             "within_tolerance": abs(diff) <= RELEASED_HEAD_TOLERANCE if comparable else None}
    atomic_write_json(run_dir / "head_check.json", check)
    if comparable and abs(diff) > RELEASED_HEAD_TOLERANCE:
        console.print(f"[yellow]warning:[/] clean top-1 {100 * clean.value:.2f} % differs from the published "
                      f"{published:.2f} % by {diff:+.2f} points (> {RELEASED_HEAD_TOLERANCE}): check the "
                      f"preprocessing and the checkpoint")
    elif not comparable:
        console.print(f"released head: published {published:.2f} % on ImageNet-1k val (50,000 images); this eval "
                      f"({cfg.data.name}/{cfg.data.eval_split}, {clean.n} images) is not comparable with it")


def weights_of(card: ZooCard) -> dict:
    """Where a run's weights are, for its result cards: a card of the project's zoo by id, a card with a URL by
    that URL and the card's fields (so ``robustbench verify`` can rebuild the model), else ``private``."""
    from ssl_robustbench.zoo import zoo_dir

    try:
        zoo = zoo_dir()
    except UserError:
        zoo = None
    in_zoo = zoo is not None and card.card_dir.resolve() == zoo.resolve() and (zoo / f"{card.id}.yaml").is_file()
    if in_zoo:
        return {"kind": "zoo", "zoo_id": card.id}
    if card.source.url:
        fields = {k: v for k, v in dataclasses.asdict(card).items() if k != "card_dir" and v is not None}
        return {"kind": "url", "url": card.source.url, "zoo_card": json.loads(json.dumps(fields, default=list))}
    return {"kind": "private"}


def write_head_file(suite: str, cfg: EvalConfig, run_dir: Path, probe: FittedProbe | None = None) -> str | None:
    """The scored head's file under ``<run>/heads/<sha256>.safetensors`` (the shared probe or released head, or
    the adversarial suite's finetuned head: only its ``head.`` tensors unless the protocol trains the backbone);
    returns its sha256 (None: no head file)."""
    from safetensors.torch import load_file, save

    bench = BENCHMARKS.get(suite)()
    if bench.uses_probe(cfg) and cfg.head == "knn":  # the recipe and the training features' store key
        record = json.dumps(probe.record if probe is not None else {}, sort_keys=True)
        data = save({"k": torch.tensor(cfg.knn.k), "temperature": torch.tensor(cfg.knn.temperature)},
                    metadata={"record": record})
    elif bench.uses_probe(cfg):
        source = run_dir / "probe.safetensors"
        data = source.read_bytes() if source.is_file() else None
    else:
        source = run_dir / "adversarial" / f"{cfg.adv.protocol}.safetensors"
        if not source.is_file():
            return None
        state = load_file(str(source))
        if cfg.adv.protocol != "aff":  # the backbone is the checkpoint's: only the head is new
            state = {k: v for k, v in state.items() if k.startswith("head.")}
        data = save(state)
    if data is None:
        return None
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(run_dir / "heads" / f"{digest}.safetensors", data)
    return digest


def suite_card(suite: str, rows: list[ResultRow], *, loaded: LoadedModel, cfg: EvalConfig, records: list,
               eval_data: dict, train_data: dict | None, probe: FittedProbe, ctx: EvalContext, env: dict,
               evidence: dict) -> ResultCard:
    """The result card of one suite, from what this run did: its rows, the head it scored (the shared probe or
    released head, or the suite's own finetune), its settings and details (``Benchmark.card_details``), the image
    set of its per-image ``records``; its protocol hash is ``protocol_digest`` of all that."""
    bench = BENCHMARKS.get(suite)()
    own = bench.head(cfg)
    if own is not None:
        head = Head(kind=own["kind"], id=f"{own['kind']}-{stable_hash(own['recipe'])}", recipe=own["recipe"])
    elif cfg.head == "knn":
        head = Head(kind="knn", id=probe.record["probe_id"], recipe=probe.record["recipe"])
    elif cfg.head == "released":
        head = Head(kind="released", id=probe.record.get("probe_id", "released"),
                    recipe={k: probe.record.get(k) for k in ("source", "url", "sha256", "published_top1")})
    else:
        head = Head(kind="probe", id=probe.record.get("probe_id", "external"), recipe=probe.record.get("recipe", {}))
    c = loaded.card
    protocol = Protocol(config_hash="", dataset=cfg.data.name, eval_split=cfg.data.eval_split,
                        subset_size=max(len(e.values) for e in records), seed=cfg.run.seed, eval_data=eval_data,
                        train_data=train_data if not (own is None and cfg.head == "released") else None,
                        preprocessing={"input_size": c.input_size, "crop_pct": c.crop_pct,
                                       "interpolation": c.interpolation, "mean": list(c.mean), "std": list(c.std)},
                        head=head, details=bench.card_details(cfg, ctx), images=image_set(records))
    # the board key is derived from the protocol's content, as validation recomputes it
    protocol = dataclasses.replace(protocol, config_hash=protocol_digest(suite, protocol))
    rows = [dataclasses.replace(r, config_hash=protocol.config_hash) for r in rows]
    return ResultCard(
        model=ModelIdentity(id=c.id, method=c.method, arch=c.arch, paper=c.paper, license=c.license,
                            pretrain_data=c.pretrain_data, checkpoint_sha256=loaded.sha256, weights=weights_of(c)),
        suite=suite, protocol=protocol,
        rows=tuple(rows), aggregates=aggregate(suite, rows), sanity_flags=tuple(bench.sanity_flags(ctx)),
        hardware={k: env.get(k) for k in ("device", "gpu", "cpu_threads", "platform", "torch")},
        version=ssl_robustbench.__version__, created_at=max(r.created_at for r in rows), evidence=evidence)


def _read_run_evidence(run_dir: Path, suite: str) -> dict:
    """The per-image records an interrupted run of ``suite`` left (column → ImageEvidence), or none."""
    path = run_dir / "evidence" / f"{suite}.parquet"
    if not path.is_file():
        return {}
    records, _ = read_evidence(path)
    return {r.column: r for r in records}


def run_eval(cfg: EvalConfig, *, run_dir: Path | None = None, probe_file: Path | None = None,
             loaded: LoadedModel | None = None) -> EvalRun:
    """Runs every suite of ``cfg`` and returns the rows (also written to ``run_dir``, by default
    ``<run.out>/<model id>-<config hash[:8]>``). Each suite's rows carry that suite's protocol hash. ``loaded``:
    an already built model and its card (the Python API's ``evaluate``) instead of ``cfg.model``."""
    for suite in cfg.suites:  # unknown suites and bad suite settings fail before any work
        BENCHMARKS.get(suite)().check(cfg)
    device = ddp.setup(resolve_device(cfg.run.device))
    main = ddp.rank() == 0
    card = loaded.card if loaded is not None else with_overrides(
        resolve_card(cfg.model, arch=cfg.arch), ignore_keys=cfg.ignore_keys, input_size=cfg.input_size,
        checkpoint_key=cfg.checkpoint_key, strip_prefixes=cfg.strip_prefixes)
    if cfg.head == "released" and card.linear_head is None:
        raise UserError(f"{card.id} has no released linear head (its card names none); use --head probe")
    run_dir = run_dir or Path(cfg.run.out) / f"{card.id}-{config_hash(cfg, exclude=('model', 'arch'))[:8]}"
    cache = Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root()
    req = DataRequest(split=cfg.data.train_split, preprocess=card.preprocess,
                      root=Path(cfg.data.root) if cfg.data.root else None, download=cfg.data.download,
                      cache_dir=cache, seed=0)
    # the head's classes by name (a folder tree's training split): the eval split is matched to them by name
    classes = head_classes(cfg.data.name, req) if cfg.head in ("probe", "knn") else None
    req = dataclasses.replace(req, classes=tuple(classes) if classes else None)
    # the data first: a missing root or class folder stops before any download, and leaves no run directory
    clean = build_dataset(cfg.data.name, dataclasses.replace(req, split=cfg.data.eval_split), limit=cfg.data.eval_limit)
    # the model next: a checkpoint whose keys do not fit leaves no run directory either, so the fixed command
    # (e.g. with --ignore-keys) can use the same --out
    seed_everything(cfg.run.seed)
    loaded = loaded or load_model(card, cache_dir=cache)
    if main:
        env = start_run(run_dir, cfg, device, env_extra={"world_size": ddp.world_size()})
    ddp.barrier()
    card_record = dataclasses.asdict(card) | {"card_dir": str(card.card_dir)}
    if main:
        atomic_write_json(run_dir / "model.json", {"card": card_record, "checkpoint_sha256": loaded.sha256,
                                                   "load_report": dataclasses.asdict(loaded.report)})
    model = loaded.model.to(device)
    before = fingerprint(model.backbone)
    if cfg.head == "released":
        probe = released_head(loaded, cache=cache, num_classes=len(clean.classes))
        if main:
            save_probe(run_dir / "probe.safetensors", probe)  # the scored head, with its record, like a probe's
    elif cfg.head == "knn":
        probe = knn_head(loaded, cfg, device=device, cache=cache, req=req, num_classes=len(clean.classes))
    else:
        probe = fit_or_load_probe(loaded, cfg, run_dir=run_dir, device=device, cache=cache, req=req,
                                  num_classes=len(clean.classes), probe_file=probe_file)
    assert_unchanged(model.backbone, before)
    model.head = probe.head.to(device)
    model.eval()
    train_data = probe.record.get("train_data")
    if train_data is None and any(not BENCHMARKS.get(s)().uses_probe(cfg) for s in cfg.suites):
        train_data = dataset_identity(labelled_train_set(cfg, req))
    eval_data = dataset_identity(clean)
    protocols = {s: protocol_hash(cfg, s, eval_data=eval_data, train_data=train_data) for s in cfg.suites}
    if main:
        atomic_write_json(run_dir / "protocol.json", {"suites": protocols, "eval_data": eval_data,
                                                      "train_data": train_data, "head": cfg.head})
    rows = read_table(run_dir / "results.json") if (run_dir / "results.json").is_file() else []
    evidence = {s: _read_run_evidence(run_dir, s) for s in cfg.suites}  # per-image records of finished conditions
    base = dict(model_id=card.id, method=card.method, arch=card.arch, seed=cfg.run.seed,
                probe_id=probe.record.get("probe_id", "external"), version=ssl_robustbench.__version__)
    ctx = EvalContext(model=model, clean=clean, num_classes=len(clean.classes), input_size=card.input_size,
                      train=lambda: labelled_train_set(cfg, req), cfg=cfg,
                      device=device, run_dir=run_dir, preprocess=card.preprocess, dual_bn=loaded.dual_bn,
                      eval_data=eval_data)
    for suite in cfg.suites:
        bench = BENCHMARKS.get(suite)()
        done = {(r.condition, r.severity): r.value for r in sorted(rows, key=lambda r: r.metric == "top1")
                if r.suite == suite}  # every measured (condition, severity); the top-1 value where there is one
        for m in bench.measure(ctx, done=done):
            rows = [r for r in rows if (r.suite, r.condition, r.severity, r.metric) != (suite, m.condition,
                                                                                       m.severity, m.metric)]
            rows.append(ResultRow(**base, suite=suite, condition=m.condition, severity=m.severity, metric=m.metric,
                                  value=m.value, n=m.n, config_hash=protocols[suite], created_at=ResultRow.now()))
            if m.evidence is not None:
                evidence[suite][m.evidence.column] = m.evidence
            if main:
                if m.evidence is not None:  # the evidence first: a finished row always has its per-image record
                    atomic_write_bytes(run_dir / "evidence" / f"{suite}.parquet",
                                       evidence_bytes(list(evidence[suite].values())))
                write_table(rows, run_dir)
    if main:
        write_table(rows, run_dir)
        for suite in cfg.suites:  # the result cards, built from what ran (validated: they must parse back)
            data = (run_dir / "evidence" / f"{suite}.parquet").read_bytes()
            record = {"sha256": hashlib.sha256(data).hexdigest(),
                      "head_sha256": write_head_file(suite, cfg, run_dir, probe)}
            card = suite_card(suite, [r for r in rows if r.suite == suite], loaded=loaded, cfg=cfg,
                              records=list(evidence[suite].values()), eval_data=eval_data, train_data=train_data,
                              probe=probe, ctx=ctx, env=env, evidence=record)
            parse_card(json.loads(card.dumps()), where=f"{suite} card", evidence=list(evidence[suite].values()))
            atomic_write_text(run_dir / "cards" / f"{suite}.json", card.dumps())
        if cfg.head == "released":
            check_released_top1(rows, probe, cfg, run_dir)
        plot_accuracy(rows, run_dir / "accuracy.png")
        console.print(f"run directory: {run_dir}")
    ddp.barrier()
    return EvalRun(run_dir=run_dir, rows=rows, probe=probe, loaded=loaded)
