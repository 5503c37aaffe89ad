"""Peak memory and time of the k-NN head (``probes/knn.py``) streaming a training feature store in chunks,
against the all-in-memory computation (DINO's ``knn_classifier``: every similarity of a query batch at once, the
training features in RAM), each in a fresh process. Usage:

    python perf/knn_memory.py [--train 200000] [--dim 512] [--queries 2000]
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


def child(mode: str, folder: Path, queries: int) -> dict:
    import torch
    import torch.nn.functional as F

    from ssl_robustbench.probes import knn
    from ssl_robustbench.probes.feature_store import FeatureStore

    torch.set_num_threads(2)
    store = FeatureStore(folder)
    q = torch.randn(queries, store.d, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    if mode == "chunked":
        knn.RESIDENT_BYTES = 0  # as for a store too large to hold
        preds = knn.KNNHead(store, num_classes=1000, chunk_rows=8192)(q).argmax(1)
    else:
        feats, labels = store.load()
        feats = F.normalize(feats, dim=1)
        sims, idx = (F.normalize(q, dim=1) @ feats.T).topk(20, dim=1)
        votes = torch.zeros(queries, 1000).scatter_add_(1, labels[idx], (sims / 0.07).exp())
        preds = votes.argmax(1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "preds": preds[:50].tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.queries)))
        return
    import torch

    from ssl_robustbench.probes.feature_store import StoreWriter

    with tempfile.TemporaryDirectory() as tmp:
        writer = StoreWriter(Path(tmp) / "store", args.train, args.dim)
        g = torch.Generator().manual_seed(0)
        for start in range(0, args.train, 50_000):
            rows = min(50_000, args.train - start)
            writer.write(torch.arange(start, start + rows).numpy(), torch.randn(rows, args.dim, generator=g),
                         torch.randint(0, 1000, (rows,), generator=g))
        writer.finish()
        results = {}
        for mode in ("chunked", "in-memory"):
            out = subprocess.run([sys.executable, __file__, "--queries", str(args.queries), "--child", mode,
                                  str(Path(tmp) / "store")], capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    same = results["chunked"]["preds"] == results["in-memory"]["preds"]
    print(f"{args.train:,} training features × {args.dim}, {args.queries:,} queries, 2 threads")
    for mode, r in results.items():
        print(f"{mode:10s} {r['seconds']:7.2f} s   peak RSS {r['peak_mib']:7.0f} MiB")
    ratio = results["in-memory"]["peak_mib"] / results["chunked"]["peak_mib"]
    print(f"memory ratio (in-memory / chunked) {ratio:.2f}x; same predictions: {same}")


if __name__ == "__main__":
    main()
