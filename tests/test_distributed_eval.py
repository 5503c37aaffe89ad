"""``robustbench eval`` under torchrun with 2 gloo ranks gives the single-process table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ssl_robustbench.results import read_table

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def _eval(out, cache_dir, ranks):
    args = ["eval", "--suite", "clean,pd", "--n-shift", "120", "--set", "data.eval_limit=240", "--set",
            "data.train_limit=600", "--device", "cpu", "--batch-size", "64", "--out", str(out), "--cache-dir",
            str(cache_dir)]
    cmd = ([TORCHRUN, "--standalone", "--nproc_per_node", str(ranks), "-m", "ssl_robustbench"] if ranks > 1
           else [sys.executable, "-m", "ssl_robustbench"]) + args
    env = dict(os.environ, OMP_NUM_THREADS="1", SSL_ROBUSTBENCH_PROGRESS="0")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {(r.suite, r.condition, r.metric): (r.value, r.n) for r in read_table(out / "results.json")}


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not installed")
def test_two_rank_eval_equals_single_process(tmp_path, cache_dir):
    single = _eval(tmp_path / "one", cache_dir, 1)
    for cached in (cache_dir / "features").glob("*.safetensors"):
        cached.unlink()
    sharded = _eval(tmp_path / "two", cache_dir, 2)  # features extracted afresh, by shards
    assert len(single) == 1 + 9 + 4 and sharded.keys() == single.keys()
    for key, (value, n) in single.items():
        assert sharded[key][1] == n and sharded[key][0] == pytest.approx(value, abs=1e-9), key
