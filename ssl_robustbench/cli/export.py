"""``robustbench export``: results in other tools' formats."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors


@click.group("export")
def export_group() -> None:
    """Export a run's results for other tools.

    \b
    Example:
      robustbench export model-index runs/demo --out model-index.yaml
    """


@export_group.command("model-index", epilog="""\b
Examples:
  robustbench export model-index runs/demo
  robustbench export model-index runs/dinov2 --model-name facebook/dinov2-small --out model-index.yaml
""")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--model-name", default=None, help="The model's name in the card (default: its zoo id).")
@click.option("--source-url", default=None, help="Where the numbers can be seen (e.g. the leaderboard's page): each "
              "entry's source.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML here (default: print it).")
@friendly_errors
def export_model_index(run: Path, model_name: str | None, source_url: str | None, out: Path | None) -> None:
    """A run's results (RUN: an eval run directory, or one card file) as the Hugging Face model card's
    `model-index` metadata: paste it into the YAML front matter of the model's README.md. One entry per suite
    aggregate, in percent, named with the head, the number of images and the protocol digest."""
    import yaml

    from ssl_robustbench.errors import UserError
    from ssl_robustbench.fileio import atomic_write_text
    from ssl_robustbench.results.model_index import model_index
    from ssl_robustbench.results.store import cards_from_source

    cards = [files.card for files in cards_from_source(run)]
    if source_url is not None and not source_url.startswith(("https://", "http://")):
        raise UserError(f"--source-url must be an http(s) URL, not {source_url!r}")
    index = model_index(cards, model_name=model_name, source_url=source_url)
    text = yaml.safe_dump(index, sort_keys=False, allow_unicode=True)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        click.echo(f"wrote {out} ({sum(len(c.aggregates) for c in cards)} metrics from {len(cards)} cards)")
