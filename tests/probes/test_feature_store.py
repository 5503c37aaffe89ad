"""The on-disk feature store and the chunked probe: same fit as in memory, shuffled rows, bounded reads."""

import numpy as np
import pytest
import torch

from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.distributed import rank
from ssl_robustbench.errors import UserError
from ssl_robustbench.probes.feature_store import FeatureStore, StoreWriter, TensorFeatures, extract_to_store
from ssl_robustbench.probes.linear import fit_linear_probe


def clusters(n=3000, d=24, c=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c  # sorted by class in blocks, as ImageNet's folder order is
    y = y.sort().values
    x = torch.randn(n, d, generator=g) + 2.5 * torch.randn(c, d, generator=g)[y] + 4.0
    return x, y


def write_store(folder, x, y):
    writer = StoreWriter(folder, len(x), x.shape[1])
    for start in range(0, len(x), 256):
        items = np.arange(start, min(start + 256, len(x)))
        writer.write(items, x[items], y[items])
    return writer.finish()


def test_store_holds_every_row_once_in_a_shuffled_order(tmp_path):
    x, y = clusters()
    store = write_store(tmp_path / "s", x, y)
    fx, fy = store.load()
    assert fx.dtype == torch.float32 and fx.shape == x.shape
    order = torch.as_tensor(np.argsort(StoreWriter(tmp_path / "t", len(x), 1).perm))
    assert torch.equal(fy, y[order]) and torch.allclose(fx, x[order].half().float())
    first_chunk = store.read(0, 500)[1]
    assert len(first_chunk.unique()) == 6, "a contiguous chunk must mix classes (rows are permuted)"
    assert sum(len(c[1]) for c in store.chunks(rows=700)) == len(x) and store.num_chunks(rows=700) == 5


def test_unfinished_or_truncated_store_is_not_taken_as_complete(tmp_path):
    x, y = clusters(n=100)
    writer = StoreWriter(tmp_path / "s", 100, x.shape[1])
    writer.write(np.arange(100), x, y)
    assert not FeatureStore.is_complete(tmp_path / "s")  # no meta.json until finish()
    writer.finish()
    with open(tmp_path / "s" / "features.f16", "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(UserError, match="truncated"):
        FeatureStore(tmp_path / "s")


def test_features_beyond_float16_are_refused(tmp_path):
    writer = StoreWriter(tmp_path / "s", 2, 3)
    with pytest.raises(UserError, match="float16"):
        writer.write(np.arange(2), torch.full((2, 3), 1e6), torch.zeros(2))


def test_chunked_lbfgs_equals_the_in_memory_fit(tmp_path):
    x, y = clusters()
    store = write_store(tmp_path / "s", x, y)
    whole = fit_linear_probe(TensorFeatures(*store.load()), num_classes=6, cfg=ProbeConfig(max_iter=30))

    class SmallChunks(FeatureStore):
        def rows_per_chunk(self, chunk_bytes=0):
            return 256  # 12 chunks instead of one

    chunked = fit_linear_probe(SmallChunks(store.folder), num_classes=6, cfg=ProbeConfig(max_iter=30))
    assert torch.allclose(chunked.head.weight, whole.head.weight, atol=1e-3, rtol=1e-3)
    assert chunked.record["n_train"] == 3000 and chunked.record["train_top1"] >= 0.97


def test_sgd_solver_learns_and_names_its_recipe():
    x, y = clusters()
    probe = fit_linear_probe(x, y, num_classes=6, cfg=ProbeConfig(solver="sgd", epochs=20, batch_size=256))
    xt, yt = clusters(seed=0)
    assert float((probe.head(xt).argmax(1) == yt).float().mean()) >= 0.95
    assert probe.record["recipe"] == {"solver": "sgd", "standardize": True, "weight_decay": 1e-4, "epochs": 20,
                                      "lr": 0.1, "batch_size": 256, "momentum": 0.9}
    assert probe.record["steps"] == 20 * 12


@pytest.mark.parametrize("change, key", [({"solver": "adam"}, "solver"), ({"weight_decay": float("nan")}, "weight"),
                                         ({"weight_decay": -1.0}, "weight_decay"), ({"max_iter": 0}, "max_iter"),
                                         ({"lr": 0.0}, "lr"), ({"batch_size": -1}, "batch_size")])
def test_probe_recipe_is_checked_where_it_is_declared(change, key):
    with pytest.raises(UserError, match=key):
        ProbeConfig(**change)


def test_extraction_writes_a_store_and_reuses_it(tmp_path):
    x, y = clusters(n=300)
    ds = torch.utils.data.TensorDataset(x, y)
    calls = []

    def fn(batch):
        calls.append(len(batch))
        return batch * 2

    def loader(d):
        return torch.utils.data.DataLoader(d, batch_size=64)

    store = extract_to_store(fn, ds, loader, device=torch.device("cpu"), folder=tmp_path / "f")
    fx, fy = store.load()
    assert rank() == 0 and store.n == 300 and store.d == 24
    assert torch.allclose(fx.sum(0), (2 * x).half().float().sum(0), rtol=1e-4) and int(fy.sum()) == int(y.sum())
    seen = sum(calls)
    again = extract_to_store(fn, ds, loader, device=torch.device("cpu"), folder=tmp_path / "f")
    assert sum(calls) == seen and again.n == 300  # the complete store is reused, nothing recomputed
