"""``robustbench cite``: BibTeX for the tool and for the papers behind a run."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors


@click.command("cite", epilog="""\b
Examples:
  robustbench cite                    # the tool and the paper of every suite
  robustbench cite runs/demo          # the tool, that run's suites and its checkpoint's method
  robustbench cite runs/demo > refs.bib
""")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@friendly_errors
def cite_command(run_dir: Path | None) -> None:
    """Print BibTeX for ssl-robustbench and the papers behind RUN_DIR (its suites, the attacks its adversarial
    suite ran, its checkpoint's method; the checkpoint's own paper as a comment). Without RUN_DIR: the tool and
    every suite's papers."""
    from ssl_robustbench.errors import UserError
    from ssl_robustbench.fileio import read_json, read_yaml
    from ssl_robustbench.results.citations import SUITE_PAPERS, render, run_keys

    if run_dir is None:
        click.echo(render(run_keys(SUITE_PAPERS, method=None, settings={})), nl=False)
        return
    config_file, model_file = run_dir / "config.yaml", run_dir / "model.json"
    if not config_file.is_file():
        raise UserError(f"{run_dir} is not a run directory of robustbench eval (no config.yaml)")
    config = read_yaml(config_file, what="run directory's config")
    suites = config.get("suites") if isinstance(config, dict) else None
    if not isinstance(suites, list) or not all(isinstance(s, str) for s in suites):
        raise UserError(f"{config_file} has no list of suites; is it a robustbench eval run?")
    card = read_json(model_file, what="run's model record").get("card", {}) if model_file.is_file() else {}
    card = card if isinstance(card, dict) else {}
    method = card.get("method") if isinstance(card.get("method"), str) else None
    notes = [f"checkpoint {card.get('id')}: {card['paper']}"] if isinstance(card.get("paper"), str) else []
    click.echo(render(run_keys(suites, method=method, settings=config), notes=notes), nl=False)
