"""``robustbench zoo list|show``."""

from __future__ import annotations

import click
import yaml
from rich.console import Console

from ssl_robustbench.cli.common import friendly_errors


@click.group("zoo")
def zoo_group() -> None:
    """Browse the model zoo (one YAML card per checkpoint in model_zoo/).

    \b
    Examples:
      robustbench zoo list
      robustbench zoo list --method dino
      robustbench zoo show dino-vits16
    """


@zoo_group.command("list")
@click.option("--method", type=str, default=None, help="Only cards of this method.")
@friendly_errors
def zoo_list(method: str | None) -> None:
    """List the cards: id, method, arch, pretraining data, license, the published ImageNet linear-evaluation top-1
    (of the released head where there is one; blank: none published) and where the weights come from.

    \b
    Example:
      robustbench zoo list --method simclr
    """
    import pandas as pd

    from ssl_robustbench.errors import warn
    from ssl_robustbench.results.leaderboard import print_frame
    from ssl_robustbench.zoo import list_cards

    rows = []
    for card in list_cards(on_bad=lambda error: warn(f"skipped {error}")):
        if method and card.method != method:
            continue
        source = "bundled" if card.source.path else card.source.url.split("/")[2]
        top1 = f"{card.published_top1:.1f}" if card.published_top1 is not None else ""
        rows.append({"id": card.id, "method": card.method, "arch": card.arch, "data": card.pretrain_data,
                     "license": card.license, "top-1": top1, "source": source})
    frame = pd.DataFrame(rows, columns=["id", "method", "arch", "data", "license", "top-1", "source"])
    # wrapped to the terminal with the id repeated in every part; no cell is broken mid-word
    print_frame(frame, "model zoo", console=Console(), identifying=("id",), low_priority=())


@zoo_group.command("show")
@click.argument("model_id")
@friendly_errors
def zoo_show(model_id: str) -> None:
    """Print one card in full.

    \b
    Example:
      robustbench zoo show embedded-simclr-tinyresnet
    """
    from ssl_robustbench.config import to_dict
    from ssl_robustbench.zoo import get_card

    card = get_card(model_id)
    data = {k: v for k, v in to_dict(card).items() if k != "card_dir" and v not in (None, [], {})}
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
