"""Full-size rehearsal of every suite (issue 40, item 6): the released sets at their real file counts, end to end.

Writes synthetic trees in the released layouts with the real counts — ImageNet val (50,000 images, 1,000 classes,
RobustBench's 5,000 ids among them) and a small train split (``--train-per-class``), ImageNet-V2 × 3 (10,000 each),
ImageNet-Sketch (50,889), ImageNet-R (30,000 of its 200 classes), ImageNet-A (7,500 of its 200), ImageNet-3DCC
(RobustBench's 5,000 ids per condition) — with tiny JPEGs so the disk stays small, then runs ``robustbench eval``
with the bundled tiny ResNet once per suite, each in a fresh process (ImageNet-C and -PD on the fly from the same
val set, ``--shift-limit`` images per condition), and checks what depends on counts and sizes: every card written
and valid against its evidence (image set, label digests, row counts from the Parquet footer), the evidence within
its byte budget, and a store holding them all validates. Prints per suite the images scored, wall time, peak RSS
and the evidence's size. ``--scale`` shrinks every count (the tests run 0.004).

    .venv/bin/python perf/rehearsal.py                       # real counts (~15 min on 2 CPU cores)
    .venv/bin/python perf/rehearsal.py --scale 0.02 --keep /tmp/rehearsal
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "perf"))

from imagenet_scale import timed  # noqa: E402

#: the released sets' real file counts
COUNTS = {"val": 50_000, "v2": 10_000, "sketch": 50_889, "r": 30_000, "a": 7_500}
SUITES = ("clean", "v2", "sketch", "r", "a", "3dcc", "c", "pd")


def _blobs(n: int = 64, size: int = 16) -> list[bytes]:
    """Tiny JPEGs of random colour fields, written as bytes (a tree of 200,000 files in seconds)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        sink = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(sink, "JPEG", quality=90)
        out.append(sink.getvalue())
    return out


def _spread(total: int, folders: list[str]) -> list[tuple[str, int]]:
    """``total`` files over ``folders`` as evenly as the released sets spread them (the first ones get one more)."""
    base, extra = divmod(total, len(folders))
    return [(f, base + (i < extra)) for i, f in enumerate(folders)]


def write_trees(root: Path, scale: float, train_per_class: int, conditions_3dcc: int) -> dict[str, int]:
    """The trees under ``root``; returns the number of files of each."""
    from ssl_robustbench.benchmarks.imagenet_3dcc import CORRUPTIONS_3D, robustbench_image_ids
    from ssl_robustbench.benchmarks.imagenet_v2 import VARIANTS
    from ssl_robustbench.benchmarks.released_sets import class_list
    from ssl_robustbench.data.folders import imagenet_wnids

    blobs, wnids = _blobs(), imagenet_wnids()
    counts: dict[str, int] = {}

    def write(path: Path, k: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blobs[k % len(blobs)])

    ids = robustbench_image_ids()[: max(1, round(5000 * scale))]
    listed: dict[str, list[str]] = {}
    for i in ids:
        listed.setdefault(i.split("/")[0], []).append(i.split("/")[1])
    n = 0
    for wnid, count in _spread(round(COUNTS["val"] * scale), wnids):
        names = listed.get(wnid, [])[:count]
        names += [f"ILSVRC2012_val_x{wnid}_{j:05d}.JPEG" for j in range(count - len(names))]
        for name in names:
            write(root / "imagenet" / "val" / wnid / name, n)
            n += 1
    counts["val"] = n
    for c, wnid in enumerate(wnids):
        for j in range(train_per_class):
            write(root / "imagenet" / "train" / wnid / f"{wnid}_{j}.JPEG", c + j)
    counts["train"] = len(wnids) * train_per_class
    for variant in VARIANTS.values():
        for c, count in _spread(round(COUNTS["v2"] * scale), [str(i) for i in range(1000)]):
            for j in range(count):
                write(root / "v2" / variant / c / f"{j}.jpeg", int(c) + j)
    counts["v2"] = 3 * round(COUNTS["v2"] * scale)
    for key, classes in (("sketch", range(1000)), ("r", class_list("imagenet-r")), ("a", class_list("imagenet-a"))):
        folder = root / key / ("sketch" if key == "sketch" else "")
        for c, count in _spread(round(COUNTS[key] * scale), [wnids[i] for i in classes]):
            for j in range(count):
                write(folder / c / f"{j}.JPEG", j)
        counts[key] = round(COUNTS[key] * scale)
    for corruption in CORRUPTIONS_3D[:conditions_3dcc]:
        for i in ids:
            write(root / "3dcc" / corruption / "1" / i, len(i))
    counts["3dcc"] = len(ids) * conditions_3dcc
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the real file counts.")
    parser.add_argument("--train-per-class", type=int, default=2)
    parser.add_argument("--conditions-3dcc", type=int, default=1, help="3DCC corruptions written (severity 1).")
    parser.add_argument("--shift-limit", type=int, default=500, help="Images per ImageNet-C / -PD condition.")
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--keep", type=Path, default=None, help="Keep the trees and runs here.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    counts = write_trees(work / "trees", args.scale, args.train_per_class, args.conditions_3dcc)
    print(f"trees: {json.dumps(counts)} files in {time.perf_counter() - t:.0f} s")
    env = dict(os.environ, SSL_ROBUSTBENCH_CACHE=str(work / "cache"), SSL_ROBUSTBENCH_PROGRESS="0")
    trees, bin_ = work / "trees", Path(sys.executable).parent / "robustbench"
    roots = {"v2": ["--v2-root", trees / "v2", "--set", "v2.variants=[matched-frequency,threshold-0.7,top-images]"],
             "sketch": ["--sketch-root", trees / "sketch"], "r": ["--r-root", trees / "r"],
             "a": ["--a-root", trees / "a"],
             "3dcc": ["--3dcc-root", trees / "3dcc", "--set", "3dcc.severities=[1]", "--set",
                      f"3dcc.corruptions=[{','.join(_corruptions(args.conditions_3dcc))}]"]
             + ([] if args.scale >= 1 else ["--set", "3dcc.images=all"]),
             "c": ["--set", f"c.limit={args.shift_limit}"], "pd": ["--set", f"pd.limit={args.shift_limit}"]}
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)  # a kept work folder: a fresh store for this run's cards
    print(f"{'suite':8} {'images':>9} {'wall s':>8} {'peak RSS MiB':>13} {'evidence kB':>12}")
    for suite in args.suites.split(","):
        out = work / "runs" / suite
        shutil.rmtree(out, ignore_errors=True)
        cmd = [str(bin_), "eval", "--model", "embedded-simclr-tinyresnet", "--data", "imagenet", "--data-root",
               str(trees / "imagenet"), "--device", "cpu", "--suite", suite, "--out", str(out),
               *map(str, roots.get(suite, []))]
        wall, rss, _ = timed(cmd, env)
        card = _check(out, suite)
        evidence = (out / "evidence" / f"{suite}.parquet").stat().st_size
        print(f"{suite:8} {card.protocol.images['n']:>9,} {wall:>8.0f} {rss:>13.0f} {evidence / 1024:>12.0f}")
        timed([str(bin_), "submit", str(out), "--to", str(store)], env)
    wall, rss, output = timed([str(bin_), "leaderboard", "validate", str(store)], env)
    summary = next(line for line in output.splitlines() if "valid card" in line)
    print(f"store: {summary} ({wall:.0f} s, {rss:.0f} MiB)")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


def _corruptions(n: int) -> list[str]:
    from ssl_robustbench.benchmarks.imagenet_3dcc import CORRUPTIONS_3D

    return list(CORRUPTIONS_3D[:n])


def _check(run: Path, suite: str):
    """The run's card, valid against its evidence and within the evidence budget."""
    from ssl_robustbench.results.card import load_card_json
    from ssl_robustbench.results.evidence import MAX_EVIDENCE_BYTES

    card = load_card_json(run / "cards" / f"{suite}.json")
    assert (run / "evidence" / f"{suite}.parquet").stat().st_size <= MAX_EVIDENCE_BYTES
    return card


if __name__ == "__main__":
    main()
