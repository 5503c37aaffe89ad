"""``robustbench pretrain``."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors, prune, run_options, run_section


@click.command("pretrain")
@click.option("--method", type=str, default=None,
              help="SSL method (--list shows them): simclr, mocov2, mocov3, simsiam, byol, dino, barlowtwins, "
                   "vicreg, swav; adversarial: acl, dynacl, dynacl++, rocl, advcl, deacl.")
@click.option("--arch", type=str, default=None, help="Backbone arch (default tiny_resnet).")
@click.option("--data", "data_name", type=str, default=None, help="Dataset name (default embedded).")
@click.option("--data-root", type=str, default=None, help="Local dataset directory.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default 30).")
@click.option("--lr", type=float, default=None, help="Base learning rate for batch 256 (default 0.3).")
@click.option("--aug", "augs", multiple=True, help="Robust view generation at the method's preset place: mpd, lcm.")
@click.option("--strategy", type=click.Choice(["fixed", "astra"]), default=None,
              help="Attack strategy of adversarial SSL methods (acl, dynacl, dynacl++, rocl, advcl, deacl): fixed "
                   "PGD or ASTrA's learned per-sample one.")
@click.option("--list", "list_methods", is_flag=True, help="List the methods (paper, --strategy) and recipes.")
@run_options
@friendly_errors
def pretrain_command(method, arch, data_name, data_root, epochs, lr, augs, strategy, list_methods, config_file,
                     overrides, **kw) -> None:
    """Pretrain an SSL backbone; re-running with the same --out resumes after the last finished epoch.

    Writes config.yaml, environment.json, log.csv (loss, lr, k-NN top-1), checkpoint.pt, and at the end
    backbone.safetensors with a zoo card.yaml that `robustbench eval --model RUN/card.yaml` evaluates.

    \b
    Examples:
      robustbench pretrain --method simclr --epochs 30 --out runs/simclr-embedded
      robustbench pretrain --config recipe.yaml --set method_args.temperature=0.5
      robustbench pretrain --config benchmarks/pretrain/simclr-embedded.yaml --aug mpd --out runs/simclr-mpd
      robustbench pretrain --config benchmarks/pretrain/acl-embedded.yaml --strategy astra --out runs/astra
      robustbench pretrain --list
    """
    if list_methods:
        _print_methods()
        return
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


def _print_methods() -> None:
    """Every registered method with its paper and whether ``--strategy`` applies, then the recipe files."""
    from rich.table import Table

    from ssl_robustbench.methods import METHODS
    from ssl_robustbench.methods.self_at import SelfAT
    from ssl_robustbench.progress import console
    from ssl_robustbench.resources import project_dir

    table = Table(title="robustbench pretrain --method")
    for column in ("method", "paper", "--strategy"):
        table.add_column(column)
    for name in METHODS.names():
        cls = METHODS.get(name)
        table.add_row(name, cls.paper, "fixed | astra" if issubclass(cls, SelfAT) else "–")
    console.print(table)
    recipes = sorted(p.name for p in (project_dir("benchmarks") / "pretrain").glob("*.yaml"))
    console.print("recipes (--config benchmarks/pretrain/<file>): " + ", ".join(recipes))


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
