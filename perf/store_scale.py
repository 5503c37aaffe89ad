"""Validate + build of a large result store from a fresh clone (issue 39, item 6: 10,000 cards in ≤ 60 s on 2 CPU
cores with no cache).

Makes a store of N valid cards with per-image evidence (100 images each, spread over 40 boards of 4 suites), every
card verified by a signed record (so every board is ranked and neighbours are compared with McNemar's test), then
times (1) validate + build with an empty cache — what a CI checkout does: every card's evidence read, every
signature checked, every neighbour pair compared; (2) validate + build after 10 new cards are added, with the
content-keyed caches (in the user's cache directory, never the store) the first run left.

    .venv/bin/python perf/store_scale.py            # 10,000 cards
    .venv/bin/python perf/store_scale.py --cards 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' card factory makes cards as an eval does

from ssl_robustbench.results.store import build_leaderboard, load_store  # noqa: E402

from cardfactory import attest, make_card, trust, write_card  # noqa: E402

SUITES = {"clean": ((("clean", 0), None),), "pd": ((("clean", 0), None), (("pd:left/black", 0), None)),
          "c": ((("clean", 0), None), (("c:fog", 3), None)), "e": ((("e:ori", 0), None), (("e:size", 0), None))}


def cards(n: int, start: int = 0):
    for i in range(start, start + n):
        suite = list(SUITES)[i % 4]
        values = tuple((key, 0.2 + 0.6 * ((i * 37 + j * 11) % 100) / 100) for j, (key, _) in enumerate(SUITES[suite]))
        yield make_card(f"model-{i}", suite=suite, values=values, config=f"{i % 40:02x}" * 8, seed=i)


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SSL_ROBUSTBENCH_CACHE"] = str(Path(tmp) / "cache")  # a fresh machine: no cache at all
        store = trust(Path(tmp) / "store")
        t = time.perf_counter()
        for card in cards(args.cards):
            write_card(store, card)
            attest(store, card)
        print(f"made {args.cards} cards with evidence and signed records in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        valid, errors = load_store(store)
        cold_validate = time.perf_counter() - t
        t = time.perf_counter()
        build_leaderboard(store, cards=valid)
        cold = cold_validate + time.perf_counter() - t
        assert not errors and len(valid) == args.cards, errors[:3]
        for card in cards(10, start=args.cards):
            write_card(store, card)
            attest(store, card)
        t = time.perf_counter()
        valid, errors = load_store(store)
        build_leaderboard(store, cards=valid)
        warm = time.perf_counter() - t
        assert not errors and len(valid) == args.cards + 10, errors[:3]
        print(f"fresh clone, no cache: validate {cold_validate:.1f} s + build = {cold:.1f} s for {args.cards} cards "
              "(target <= 60 s at 10,000)")
        print(f"validate + build with 10 new cards, caches warm: {warm:.1f} s for {len(valid)} cards")


if __name__ == "__main__":
    main()
