"""``robustbench pretrain``."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors, prune, run_options, run_section


@click.command("pretrain")
@click.option("--method", type=str, default=None,
              help="SSL method: simclr, mocov2, simsiam, byol, dino, barlowtwins, vicreg, swav, acl.")
@click.option("--arch", type=str, default=None, help="Backbone arch (default tiny_resnet).")
@click.option("--data", "data_name", type=str, default=None, help="Dataset name (default embedded).")
@click.option("--data-root", type=str, default=None, help="Local dataset directory.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default 30).")
@click.option("--lr", type=float, default=None, help="Base learning rate for batch 256 (default 0.3).")
@click.option("--aug", "augs", multiple=True, help="Robust view generation at the method's preset place: mpd, lcm.")
@click.option("--strategy", type=click.Choice(["fixed", "astra"]), default=None,
              help="Attack strategy of adversarial SSL methods (acl): fixed PGD or ASTrA's learned per-sample one.")
@run_options
@friendly_errors
def pretrain_command(method, arch, data_name, data_root, epochs, lr, augs, strategy, config_file, overrides,
                     **kw) -> None:
    """Pretrain an SSL backbone; re-running with the same --out resumes after the last finished epoch.

    Writes config.yaml, environment.json, log.csv (loss, lr, k-NN top-1), checkpoint.pt, and at the end
    backbone.safetensors with a zoo card.yaml that `robustbench eval --model RUN/card.yaml` evaluates.

    \b
    Examples:
      robustbench pretrain --method simclr --epochs 30 --out runs/simclr-embedded
      robustbench pretrain --config recipe.yaml --set method_args.temperature=0.5
      robustbench pretrain --config benchmarks/pretrain/simclr-embedded.yaml --aug mpd --out runs/simclr-mpd
      robustbench pretrain --config benchmarks/pretrain/acl-embedded.yaml --strategy astra --out runs/astra
    """
    from ssl_robustbench.config import resolve
    from ssl_robustbench.training.config import PretrainConfig
    from ssl_robustbench.training.loop import pretrain

    options = prune({"method": method, "arch": arch, "epochs": epochs, "lr": lr, "aug": list(augs) or None,
                     "method_args": {"strategy": strategy}, "data": {"name": data_name, "root": data_root},
                     "run": run_section(kw)})
    cfg = resolve(PretrainConfig, config_file=config_file, options=options, overrides=list(overrides))
    out = Path(cfg.run.out) if kw.get("out") else Path(cfg.run.out) / f"pretrain-{cfg.method}-{cfg.data.name}"
    from ssl_robustbench import distributed as ddp

    path = pretrain(cfg, out)
    if ddp.rank() == 0:
        click.echo(f"backbone: {path}\ncard: {path.parent / 'card.yaml'}")
    ddp.teardown()


@click.command("policy-plot", epilog="""\b
Examples:
  robustbench policy-plot runs/astra-embedded
  robustbench policy-plot runs/cifar10-astra --out astra-policy.png
""")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default RUN_DIR/policy.png).")
@friendly_errors
def policy_plot_command(run_dir: Path, out: Path | None) -> None:
    """Plot an ASTrA run's action distributions (ε, steps, step size) and reward per epoch from its log.csv
    (pretraining redraws RUN_DIR/policy.png after every epoch)."""
    from ssl_robustbench.training.policy_plot import plot_policy

    click.echo(f"wrote {plot_policy(run_dir / 'log.csv', out or run_dir / 'policy.png')}")
