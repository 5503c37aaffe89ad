"""Per-image AutoAttack flags of our cascade against ``pyautoattack``'s own ``run_standard_evaluation``, at 1 and 2
torch threads (issue 32, item 5): the bundled ``embedded-simclr32-tinyresnet`` with an L-BFGS probe fitted on the
val split, the first ``--n`` test images, ε = 1/255, APGD-CE then APGD-T. Each thread count runs in a fresh
process. Usage:

    python perf/autoattack_agreement.py [--n 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def child(n: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from ssl_robustbench.attacks.autoattack import build_autoattack, components
    from ssl_robustbench.attacks.base import ThreatModel
    from ssl_robustbench.attacks.runner import run_cascade
    from ssl_robustbench.config import ProbeConfig
    from ssl_robustbench.data.embedded import load_split
    from ssl_robustbench.probes.linear import fit_linear_probe
    from ssl_robustbench.zoo import get_card, load_model
    from ssl_robustbench.zoo.download import cache_root

    torch.set_num_threads(threads)
    loaded = load_model(get_card("embedded-simclr32-tinyresnet"))
    model, side = loaded.model.eval(), loaded.card.input_size

    def prep(x):
        x = x.float() / 255
        return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True) if x.shape[-1] != side else x

    xv, yv = load_split("val", cache_dir=cache_root())
    with torch.no_grad():
        model.head = fit_linear_probe(model.features(prep(xv)), yv, num_classes=10, cfg=ProbeConfig()).head.eval()
    xt, yt = load_split("test", cache_dir=cache_root())
    x, y = prep(xt[:n]), yt[:n]
    threat = ThreatModel("Linf", 1 / 255)

    def configured():
        aa = build_autoattack(model, threat, num_classes=10, seed=0)
        aa.attacks_to_run = ["apgd-ce", "apgd-t"]
        return aa

    _, y_adv = configured().run_standard_evaluation(x, y, batch_size=250)
    ours = run_cascade(model, x, y, components(configured()), batch_size=250)
    reference = y_adv == y
    return {"threads": threads, "reference": reference.nonzero().flatten().tolist(),
            "ours": ours.robust.nonzero().flatten().tolist(), "differ": int((reference != ours.robust).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.child)))
        return
    for threads in (1, 2):
        out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--child", str(threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{threads} thread(s): pyautoattack leaves {r['reference']} robust, ours {r['ours']}; "
              f"{r['differ']} of {args.n} images differ")


if __name__ == "__main__":
    main()
