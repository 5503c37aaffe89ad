"""``robustbench eval`` and ``robustbench probe``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors, prune, run_options, run_section
from ssl_robustbench.errors import UserError

_EPILOG = """\b
Examples:
  robustbench eval                                   # bundled SimCLR tiny ResNet on the embedded dataset
  robustbench eval --model embedded-random-tinyresnet --out runs/random
  robustbench eval --model mocov3-rn50-1000ep --data imagenet --data-root /data/imagenet --set data.eval_split=val
  robustbench eval --model ckpt.pth --arch torchvision/resnet50 --data cifar10 --data-root ~/data
  robustbench eval --model mocov3-rn50-1000ep --head released --data imagenet --data-root /data/imagenet \\
      --set data.eval_split=val                      # the published linear head: no probe fit, top-1 checked
  robustbench eval --model vit.pth --arch timm/vit_small_patch16_224 --ignore-keys 'head\\..*' --input-size 224
  robustbench eval --suite clean --suite adversarial --n-adv 200 --protocol slf   # SA / PGD-20 RA / AutoAttack AA
  robustbench eval --suite adversarial --set adv.norm=L2 --set adv.eps=0.5 --set adv.autoattack=plus
  robustbench eval --suite c,pd,e --n-shift 500      # ImageNet-C / -PD / -E generated from the embedded test set
  robustbench eval --label-fraction 0.01 --suite clean,adversarial   # heads fitted on 1 % of the labels
  robustbench eval --head knn                        # DINO's weighted k-NN (k = 20, T = 0.07) instead of a probe
  robustbench eval --model mocov3-rn50-1000ep --data imagenet --data-root /data/imagenet --set data.eval_split=val \\
      --suite c --c-root /data/imagenet-c            # the released ImageNet-C tree (center crop only)
  robustbench eval --suite c --set c.extra=true --set c.reference=imagecorruptions --set "c.severities=[3]"
"""


def _model_options(func):
    for option in reversed([
        click.option("--model", type=str, default=None,
                     help="Zoo id, card YAML, or checkpoint file (default embedded-simclr-tinyresnet)."),
        click.option("--arch", type=str, default=None, help="Arch of a checkpoint file, e.g. torchvision/resnet50."),
        click.option("--data", "data_name", type=str, default=None,
                     help="embedded, imagenet, imagefolder, cifar10, cifar100 or stl10 (default embedded; the "
                          "eval split defaults to val for imagenet, test otherwise)."),
        click.option("--data-root", type=str, default=None, help="Local dataset directory."),
        click.option("--probe", "probe_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Reuse a saved probe (probe.safetensors) instead of fitting one."),
        click.option("--ignore-keys", "ignore_keys", multiple=True, metavar="REGEX",
                     help="Checkpoint keys to drop before the strict load, e.g. 'fc\\..*' (repeatable)."),
        click.option("--checkpoint-key", type=str, default=None, metavar="PATH",
                     help="Where the weights are inside the checkpoint, e.g. state_dict or teacher (default: the "
                          "root, else state_dict / model as the official training scripts save them)."),
        click.option("--strip-prefix", "strip_prefixes", multiple=True, metavar="PREFIX",
                     help="Key prefix to strip before the strict load, e.g. backbone. (repeatable; module. of a "
                          "DistributedDataParallel checkpoint is stripped by itself)."),
        click.option("--input-size", type=int, default=None,
                     help="Model input side in pixels (default: the card's, or the timm model's pretrained_cfg)."),
        click.option("--label-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help="Fit every head (probe, SLF/ALF/AFF) on this fraction of the training labels: a "
                          "class-balanced seed-0 subset, e.g. 0.01 or 0.1 (semi-supervised protocols; default 1)."),
    ]):
        func = option(func)
    return func


def _suite_options(func):
    """Adds every suite's options as ``suite__<flag>`` (a flag declared by several suites is one option that sets each
    suite's field): the built-in suites' from ``suite_options.SUITE_OPTIONS``, known without importing torch, and,
    where the benchmarks are already imported (a plug-in registered its suite before running the command), those of
    every registered suite."""
    from ssl_robustbench.suite_options import SUITE_OPTIONS

    groups = list(SUITE_OPTIONS.values())
    benchmarks = sys.modules.get("ssl_robustbench.benchmarks")
    if benchmarks is not None:
        groups += [benchmarks.BENCHMARKS.get(name).options for name in benchmarks.BENCHMARKS.names()]
    seen: dict[str, object] = {}
    for options in groups:
        for opt in options:
            seen.setdefault(opt.flag, opt)
    for flag, opt in reversed(list(seen.items())):
        kind = click.Choice(list(opt.choices)) if opt.choices else opt.type
        func = click.option(flag, _param(flag), type=kind, default=None, help=opt.help)(func)
    return func


def _param(flag: str) -> str:
    """The keyword a suite option reaches the command under (``--n-shift`` → ``suite__n_shift``)."""
    return "suite__" + flag.lstrip("-").replace("-", "_")


def suite_sections(kw: dict) -> dict:
    """``{section: {field: value}}`` from the suite options given on the command line (popped from ``kw``)."""
    from ssl_robustbench.benchmarks import BENCHMARKS

    out: dict[str, dict] = {}
    given = {k: kw.pop(k) for k in [k for k in kw if k.startswith("suite__")]}
    for name in BENCHMARKS.names():
        bench = BENCHMARKS.get(name)
        for opt in bench.options:
            value = given.get(_param(opt.flag))
            if value is not None:
                out.setdefault(bench.section, {})[opt.field] = value
    return out


def _resolve(model, arch, data_name, data_root, suites, config_file, overrides, kw, shifts=None, head=None):
    from ssl_robustbench.config import resolve
    from ssl_robustbench.eval_config import EvalConfig

    if suites and not any(s.strip() for item in suites for s in item.split(",")):
        raise UserError(f"--suite {','.join(suites)!r} names no suite; e.g. --suite clean,c,pd")
    suites = [s.strip() for item in suites for s in item.split(",") if s.strip()]
    options = prune({"model": model, "arch": arch, "ignore_keys": list(kw.pop("ignore_keys", ())) or None,
                     "checkpoint_key": kw.pop("checkpoint_key", None),
                     "strip_prefixes": list(kw.pop("strip_prefixes", ())) or None,
                     "input_size": kw.pop("input_size", None), "head": head,
                     "label_fraction": kw.pop("label_fraction", None),
                     "data": {"name": data_name, "root": data_root},
                     "suites": suites or None, "run": run_section(kw), **(shifts or {})})
    return resolve(EvalConfig, config_file=config_file, options=options, overrides=list(overrides))


def _no_ignored_options(cfg, probe_file) -> None:
    """Options that a combination would silently ignore are an error."""
    if probe_file is not None and cfg.label_fraction < 1:
        raise UserError("--probe reuses a fitted probe, so --label-fraction would be ignored; drop one of them")
    if probe_file is not None and cfg.head != "probe":
        raise UserError(f"--head {cfg.head} scores no fitted probe, so --probe would be ignored; drop one of them")


@click.command("eval", epilog=_EPILOG)
@_model_options
@click.option("--suite", "suites", multiple=True,
              help="Benchmark suites (registered: clean, adversarial, c = ImageNet-C, pd = ImageNet-PD, "
                   "e = ImageNet-E; released trees only: v2, sketch, r, a, 3dcc); repeatable or comma-separated "
                   "(default clean). Each suite's settings: --set <section>.<key>=value, or its options below.")
@_suite_options
@click.option("--head", type=click.Choice(["probe", "released", "knn"]), default=None,
              help="probe: fit a linear probe (default); released: the linear head the method's authors published "
                   "(named in the zoo card), no fit; the clean row is checked against its published top-1; knn: "
                   "DINO's weighted k-NN on the training features (--set knn.k=20 --set knn.temperature=0.07).")
@click.option("--all", "show_all", is_flag=True,
              help="Print every condition's row (default: one line per suite with its scores).")
@run_options
@friendly_errors
def eval_command(model, arch, data_name, data_root, probe_file, suites, head, show_all, config_file, overrides,
                 **kw) -> None:
    """Evaluate a frozen SSL backbone: fit (or reuse) a linear probe, run the suites, write a results table.

    The run directory holds config.yaml, environment.json, model.json, probe.safetensors,
    results.{csv,parquet,json} (one row per suite × condition × severity × metric) and accuracy.png.
    """
    from ssl_robustbench.evaluation import run_eval
    from ssl_robustbench.results.summary import print_summary

    cfg = _resolve(model, arch, data_name, data_root, suites, config_file, overrides, kw, shifts=suite_sections(kw),
                   head=head)
    _no_ignored_options(cfg, probe_file)
    from ssl_robustbench import distributed as ddp

    result = run_eval(cfg, run_dir=Path(cfg.run.out) if kw.get("out") else None, probe_file=probe_file)
    if ddp.rank() == 0:
        print_summary(result.rows, title=f"{result.loaded.card.id} on {cfg.data.name}/{cfg.data.eval_split}",
                      full=show_all)
    ddp.teardown()


_PROBE_EPILOG = """\b
Examples:
  robustbench probe                                  # bundled SimCLR tiny ResNet on the embedded dataset
  robustbench probe --model embedded-random-tinyresnet --out runs/random-probe
  robustbench probe --model mocov3-rn50-1000ep --data imagenet --data-root /data/imagenet --set data.eval_split=val
  robustbench probe --model ckpt.pth --arch torchvision/resnet50 --data cifar10 --data-root ~/data \\
      --set probe.solver=sgd --set probe.epochs=100
"""


@click.command("probe", epilog=_PROBE_EPILOG)
@_model_options
@run_options
@friendly_errors
def probe_command(model, arch, data_name, data_root, probe_file, config_file, overrides, **kw) -> None:
    """Fit a linear probe on frozen features and report its clean top-1 (the clean suite only).

    The probe is saved as probe.safetensors in the run directory; pass it to `eval --probe` to reuse it.
    """
    from ssl_robustbench.evaluation import run_eval

    cfg = _resolve(model, arch, data_name, data_root, ("clean",), config_file, overrides, kw)
    _no_ignored_options(cfg, probe_file)
    result = run_eval(cfg, run_dir=Path(cfg.run.out) if kw.get("out") else None, probe_file=probe_file)
    rec = result.probe.record
    clean = next(r for r in result.rows if r.suite == "clean")
    steps = (f"{rec.get('iterations', '?')} L-BFGS iterations" if rec.get("recipe", {}).get("solver") == "lbfgs"
             else f"{rec.get('steps', '?')} SGD steps")
    click.echo(f"probe: {result.run_dir / 'probe.safetensors'} (train top-1 {rec.get('train_top1', float('nan')):.4f},"
               f" {steps})")
    click.echo(f"clean top-1: {clean.value:.4f} on {clean.n} images")
