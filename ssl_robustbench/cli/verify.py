"""``robustbench verify`` and ``robustbench compare``: re-run a card's sample; paired differences of two cards."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors


@click.command("verify")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Record each outcome in this store's verifications/ (needs --sign) and rebuild its leaderboard.")
@click.option("--sign", "key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sign the records with this ed25519 private key; it must be an operator's in the store's "
                   "store.toml (unsigned records count as absent).")
@click.option("--images", default=None, type=click.IntRange(1, 10_000_000),
              help="Images sampled per condition (default: the smallest sample that catches a score inflated by 2 "
                   "points with 95 % probability).")
@click.option("--seed", default=None, type=click.IntRange(0),
              help="Seed of the sample: replays a recorded verification (default: fresh randomness).")
@click.option("--refit/--no-refit", default=False, show_default=True,
              help="Re-fit the probe from the named training split under the card's recipe; it must agree with "
                   "the submitted head.")
@click.option("--data-root", default=None, help="The evaluation data (for datasets that are not embedded).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Config override, e.g. a released tree: --set c.root=/data/imagenet-c.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--cache-dir", default=None, help="Download and data cache (default: ~/.cache/ssl-robustbench).")
@friendly_errors
def verify_command(sources: tuple[Path, ...], store: Path | None, key: Path | None, images: int | None,
                   seed: int | None, refit: bool, data_root: str | None, overrides: tuple[str, ...], device: str,
                   cache_dir: str | None) -> None:
    """Re-run a fresh random sample of every condition of each card from the weights the card names and compare
    per-image results with its evidence. SOURCES: eval run directories or card files (in a run or a store).

    Deterministic conditions must agree image by image (1 % of the sample may flip from float noise);
    random corruptions and attacks are compared with a one-sided binomial test on the discordant images. Each
    outcome states the chance that a score inflated by 2 points would have passed (one minus its power). Only records
    signed by an operator of the store (--sign) change a card's status on its board. Exit status 1 if any card
    failed.

    \b
    Examples:
      robustbench verify runs/demo
      robustbench verify runs/demo --refit
      robustbench verify results/cards/*.json --store results --sign ~/.ssh/robustbench_ed25519 --refit
      robustbench verify card.json --data-root /data/imagenet --images 500
    """
    from ssl_robustbench.errors import UserError
    from ssl_robustbench.results.leaderboard import terminal_safe
    from ssl_robustbench.results.store import build_leaderboard, cards_from_source, store_lock
    from ssl_robustbench.results.trust import (
        append_record,
        fingerprint,
        load_signing_key,
        load_trust_root,
        public_line,
        sign,
    )
    from ssl_robustbench.verification import verify_card

    private, root = None, None
    if store is not None:
        if key is None:
            raise UserError("--store records a verification only when it is signed: add --sign KEY (an operator's "
                            "key in the store's store.toml)")
        root = load_trust_root(store)
        private = load_signing_key(key)
        if root.operator(fingerprint(public_line(private))) is None:
            raise UserError(f"{key} is not an operator key of {store} (store.toml); records it signed would count "
                            f"as absent — add its public key with `robustbench leaderboard trust {store} KEY.pub`")
    results = []
    for source in sources:
        for files in cards_from_source(source):
            result = verify_card(files, images=images, seed=seed, refit=refit, data_root=data_root,
                                 overrides=overrides, device=device, cache_dir=cache_dir,
                                 store_name=root.name if root else None)
            colour = {"verified": "green", "failed": "red"}.get(result.outcome, "yellow")
            click.secho(f"{result.outcome}: {result.card}: {terminal_safe(result.reason)} (sample seed "
                        f"{result.payload['sample_seed']})", fg=colour)
            results.append(result)
    if store is not None:
        with store_lock(store):
            for result in results:
                if result.outcome != "private":
                    append_record(store, result.card, sign(result.payload, private))
            build_leaderboard(store)
        click.echo(f"recorded {len(results)} signed verification(s) in {store}/verifications")
    elif results:
        click.echo("not recorded: no board changes until an operator verifies the card in its store "
                   "(--store STORE --sign KEY; docs/leaderboard.md)")
    sys.exit(1 if any(r.outcome == "failed" for r in results) else 0)


@click.command("compare")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly_errors
def compare_command(first: Path, second: Path) -> None:
    """Paired differences of two cards of one board, per condition: top-1 of each, the difference with its 95 %
    interval, the images only one gets right, and McNemar's exact p.

    \b
    Example:
      robustbench compare results/cards/embedded-simclr-tinyresnet__c__ca598dd0.json \\
                          results/cards/embedded-simclr-mpd-tinyresnet__c__ca598dd0.json
    """
    from rich.console import Console
    from rich.table import Table

    from ssl_robustbench.errors import UserError
    from ssl_robustbench.results.significance import aligned, discordant, mcnemar_p, paired_difference
    from ssl_robustbench.results.store import card_files

    a, b = card_files(first), card_files(second)
    if a.card.protocol.config_hash != b.card.protocol.config_hash or a.card.suite != b.card.suite:
        raise UserError("the two cards are on different boards (suite or protocol hash differ): their images or "
                        "heads are not the same, so a paired comparison means nothing")
    ea, eb = a.records, b.records
    table = Table(title=f"{a.card.model.id} − {b.card.model.id} ({a.card.suite}, protocol "
                        f"{a.card.protocol.config_hash[:12]})")
    for col in ("condition", "n", "A %", "B %", "A − B", "95% CI", "only A", "only B", "McNemar p"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for column, x, y in aligned(ea, eb):
        d = paired_difference(x, y)
        table.add_row(column, str(d["n"]), f"{100 * d['a']:.2f}", f"{100 * d['b']:.2f}",
                      f"{100 * d['difference']:+.2f}", f"{100 * d['ci95_low']:+.2f} … {100 * d['ci95_high']:+.2f}",
                      str(d["only_a"]), str(d["only_b"]), f"{d['p_value']:.3g}")
    Console().print(table)
    from ssl_robustbench.benchmarks import BENCHMARKS

    bench = BENCHMARKS.get(a.card.suite)()
    only_a, only_b = discordant(bench.ranked_columns(ea), bench.ranked_columns(eb))
    click.echo(f"ranked conditions pooled: only A right on {only_a}, only B on {only_b}, "
               f"McNemar p = {mcnemar_p(only_a, only_b):.3g}")
