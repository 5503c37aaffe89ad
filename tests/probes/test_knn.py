"""Weighted k-NN head against a direct implementation of DINO's ``knn_classifier`` (eval_knn.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssl_robustbench.probes import knn
from ssl_robustbench.probes.feature_store import StoreWriter, TensorFeatures
from ssl_robustbench.probes.knn import KNNHead, knn_votes


def dino_knn_classifier(train_features, train_labels, test_features, k, T, num_classes):
    """DINO's knn_classifier, written out directly: normalized features, all similarities at once, top-k,
    one-hot votes weighted by exp(s / T); returns the votes [B, C]."""
    train_features = F.normalize(train_features, dim=1)
    test_features = F.normalize(test_features, dim=1)
    similarity = test_features @ train_features.T
    distances, indices = similarity.topk(k, largest=True, sorted=True)
    candidates = train_labels.view(1, -1).expand(len(test_features), -1).gather(1, indices)
    one_hot = torch.zeros(len(test_features) * k, num_classes)
    one_hot.scatter_(1, candidates.view(-1, 1), 1)
    weights = (distances / T).exp()
    return (one_hot.view(len(test_features), -1, num_classes) * weights.view(len(test_features), -1, 1)).sum(1)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(10, 32, generator=g)
    labels = torch.randint(0, 10, (3000,), generator=g)
    train = centers[labels] + 0.8 * torch.randn(3000, 32, generator=g)
    test_labels = torch.randint(0, 10, (200,), generator=g)
    test = centers[test_labels] + 0.8 * torch.randn(200, 32, generator=g)
    return train, labels, test, test_labels


@pytest.mark.parametrize("chunk_rows", [7, 256, 100000])
def test_votes_equal_dinos_knn_classifier_whatever_the_chunking(data, chunk_rows):
    train, labels, test, _ = data
    want = dino_knn_classifier(train, labels, test, 20, 0.07, 10)
    got = knn_votes(test, TensorFeatures(train, labels).chunks(chunk_rows), k=20, temperature=0.07, num_classes=10)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_head_streams_a_feature_store_in_bounded_chunks(data, tmp_path, monkeypatch):
    train, labels, test, test_labels = data
    writer = StoreWriter(tmp_path / "store", len(train), train.shape[1])
    writer.write(torch.arange(len(train)).numpy(), train, labels)
    store = writer.finish()
    reads = []
    real = store.read
    monkeypatch.setattr(store, "read", lambda a, b: reads.append(b - a) or real(a, b))
    monkeypatch.setattr(knn, "RESIDENT_BYTES", 0)  # as for a store too large to hold: read chunk by chunk
    head = KNNHead(store, num_classes=10, k=20, temperature=0.07, chunk_rows=500)
    votes = head(test)
    assert max(reads) <= 500 and sum(reads) == len(train)
    assert torch.equal(votes.argmax(1), dino_knn_classifier(train, labels, test, 20, 0.07, 10).argmax(1))
    assert float((votes.argmax(1) == test_labels).float().mean()) > 0.8  # well-separated classes


def test_fewer_training_rows_than_k(data):
    train, labels, test, _ = data
    votes = knn_votes(test[:3], [(train[:5], labels[:5])], k=20, temperature=0.07, num_classes=10)
    assert torch.allclose(votes.sum(1), (F.normalize(test[:3], dim=1) @ F.normalize(train[:5], dim=1).T
                                          / 0.07).exp().sum(1), rtol=1e-5)


def test_eval_with_the_knn_head_is_its_own_protocol(tmp_path):
    import json

    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    def run(out, *extra):
        result = CliRunner().invoke(main, ["eval", "--set", "data.eval_limit=300", "--device", "cpu",
                                           "--out", str(tmp_path / out), *extra])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / out / "cards" / "clean.json").read_text())

    knn_card, probe_card = run("knn", "--head", "knn"), run("probe")
    head = knn_card["protocol"]["head"]
    assert head["kind"] == "knn" and head["recipe"] == {"kind": "knn", "k": 20, "temperature": 0.07}
    assert knn_card["protocol"]["config_hash"] != probe_card["protocol"]["config_hash"]
    assert knn_card["rows"][0]["value"] > 0.3  # the bundled SimCLR: ~50 %; chance is 10 %
    other_k = run("knn5", "--head", "knn", "--set", "knn.k=5")
    assert other_k["protocol"]["config_hash"] != knn_card["protocol"]["config_hash"]


@pytest.mark.parametrize("args, message", [
    (["--head", "knn", "--set", "knn.k=0"], "knn.k"),
    (["--head", "knn", "--set", "knn.temperature=0"], "knn.temperature"),
    (["--head", "knn", "--probe", "x.safetensors"], "--head knn scores no fitted probe"),
])
def test_bad_knn_settings_are_refused(tmp_path, args, message):
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    result = CliRunner().invoke(main, ["eval", "--device", "cpu", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_verify_rebuilds_a_knn_card_from_its_training_features(tmp_path):
    import json

    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    out = tmp_path / "knn"
    result = CliRunner().invoke(main, ["eval", "--head", "knn", "--set", "data.eval_limit=200", "--device", "cpu",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    ok = CliRunner().invoke(main, ["verify", str(out / "cards" / "clean.json"), "--images", "50", "--device", "cpu"])
    assert ok.exit_code == 0 and ok.output.startswith("verified"), ok.output
    card = json.loads((out / "cards" / "clean.json").read_text())
    from cardfactory import rehash

    card["protocol"]["head"]["recipe"]["k"] = 5  # another recipe than the one the rows came from, hashes redone
    (out / "cards" / "clean.json").write_text(json.dumps(rehash(card)))
    edited = CliRunner().invoke(main, ["verify", str(out / "cards" / "clean.json"), "--images", "50",
                                       "--device", "cpu"])
    assert "failed:" in edited.output and "per-image results differ" in edited.output, edited.output


def test_a_float32_store_keeps_dinos_neighbours_on_crowded_features(tmp_path):
    """Crowded 2048-d features (neighbour gaps below float16's resolution): a float16 store reorders neighbours
    and changes predictions; the float32 store the k-NN head uses gives DINO's knn_classifier exactly."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 2048, generator=g)
    # every feature near one point: neighbour gaps ~1e-5 in cosine, below what float16 rows resolve, far above
    # float32's rounding
    train = base + 0.1 * torch.randn(4000, 2048, generator=g)
    labels = torch.randint(0, 10, (4000,), generator=g)
    test = base + 0.1 * torch.randn(1000, 2048, generator=g)
    want = dino_knn_classifier(train, labels, test, 20, 0.07, 10).argmax(1)
    predictions = {}
    for dtype in ("float16", "float32"):
        writer = StoreWriter(tmp_path / dtype, len(train), train.shape[1], dtype=dtype)
        writer.write(torch.arange(len(train)).numpy(), train, labels)
        predictions[dtype] = KNNHead(writer.finish(), num_classes=10, k=20, temperature=0.07)(test).argmax(1)
    assert torch.equal(predictions["float32"], want)
    assert (predictions["float16"] != want).sum() > 0  # what the float32 store prevents
