"""Peak memory and time of the linear probe against the number of training features N.

Each measurement runs in a fresh process (peak RSS is per process): synthetic 2048-d features of N images (C
Gaussian classes, ImageNet-like magnitudes) are written into an on-disk feature store (fp16, as extraction
writes it), then the probe is fitted on the store — L-BFGS for a few iterations (the time of one full data pass
is what scales) and one SGD epoch. The reference, in the same run, is the in-memory fit the probe used before
(features, standardized copy and one-hot in RAM), which grows linearly in N. Usage:

    python perf/probe_memory.py [--sizes 10000 100000 1000000] [--classes 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

D = 2048


def child(n: int, classes: int, mode: str, folder: Path) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(2)
    from ssl_robustbench.config import ProbeConfig
    from ssl_robustbench.probes.feature_store import FeatureStore, StoreWriter
    from ssl_robustbench.probes.linear import fit_linear_probe

    g = torch.Generator().manual_seed(0)
    centers = torch.randn(classes, D, generator=g)
    out: dict = {"n": n, "mode": mode}
    t = time.perf_counter()
    if mode == "memory":  # the reference: everything in RAM
        y = torch.randint(0, classes, (n,), generator=g)
        x = (torch.randn(n, D, generator=g) + centers[y]).relu()
        source = (x, y)
    else:
        writer = StoreWriter(folder, n, D)
        for start in range(0, n, 16384):
            items = np.arange(start, min(n, start + 16384))
            y = torch.randint(0, classes, (len(items),), generator=g)
            writer.write(items, (torch.randn(len(items), D, generator=g) + centers[y]).relu(), y)
        source = (writer.finish(),)
    out["write_s"] = time.perf_counter() - t
    for solver, cfg in (("lbfgs", ProbeConfig(max_iter=2)), ("sgd", ProbeConfig(solver="sgd", epochs=1))):
        t = time.perf_counter()
        probe = fit_linear_probe(*source, num_classes=classes, cfg=cfg)
        out[f"{solver}_s"] = time.perf_counter() - t
        out[f"{solver}_passes"] = probe.record.get("data_passes", 1) + 2  # + the stats and train-accuracy passes
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if mode == "store":
        out["store_gib"] = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**30
        FeatureStore(folder)  # still valid
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--memory-limit", type=int, default=100_000, help="largest N for the in-memory reference")
    parser.add_argument("--child", nargs=3, metavar=("N", "MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.classes, args.child[1], Path(args.child[2]))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for mode in ("store", "memory") if n <= args.memory_limit else ("store",):
                cmd = [sys.executable, __file__, "--classes", str(args.classes), "--child", str(n), mode,
                       str(Path(tmp) / f"s{n}")]
                rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
                subprocess.run(["rm", "-rf", str(Path(tmp) / f"s{n}")], check=True)
    print(f"linear probe on synthetic {D}-d features, {args.classes} classes, cpu (2 threads); fresh process each")
    print(f"{'N':>9} {'features':>8} {'peak RSS':>10} {'write':>8} {'L-BFGS/pass':>12} {'SGD epoch':>10}")
    stores = sorted((r for r in rows if r["mode"] == "store"), key=lambda r: r["n"])
    for r in rows:
        per_pass = r["lbfgs_s"] / r["lbfgs_passes"]
        print(f"{r['n']:>9,} {r['mode']:>8} {r['peak_rss_mib']:>7.0f} MiB {r['write_s']:>7.1f}s {per_pass:>11.2f}s "
              f"{r['sgd_s']:>9.1f}s")
    # below one chunk (~32k rows of 2048-d) the whole set is the chunk; beyond it memory must stay flat
    beyond = [r for r in stores if r["n"] > 256 * 2**20 // (4 * D)]
    if len(beyond) >= 2:
        lo, hi = beyond[0], beyond[-1]
        print(f"store: peak RSS at N={hi['n']:,} is {hi['peak_rss_mib'] / lo['peak_rss_mib']:.2f}x that at "
              f"N={lo['n']:,} ({hi['n'] // lo['n']}x the features; target <= 1.10x: flat in N beyond one chunk)")
    ref = [r for r in rows if r["mode"] == "memory"]
    if ref:
        big = max(ref, key=lambda r: r["n"])
        store_same = next(r for r in rows if r["mode"] == "store" and r["n"] == big["n"])
        print(f"in-memory reference at N={big['n']:,}: {big['peak_rss_mib']:.0f} MiB, "
              f"{big['peak_rss_mib'] / store_same['peak_rss_mib']:.2f}x the store's; it grows by N x {D} x 8 bytes "
              f"(features + standardized copy): {max(r['n'] for r in rows) * D * 8 / 2**30:.0f} GiB more at "
              f"N={max(r['n'] for r in rows):,}")


if __name__ == "__main__":
    main()
