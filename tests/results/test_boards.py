"""Boards that rank only what compares, cards that cannot disagree with their evidence, verification that catches a
rehashed forgery, McNemar-shared ranks, and a store that hostile files cannot break."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from ssl_robustbench.cli import main
from ssl_robustbench.results.card import CardError, aggregate, load_card_json, rows_digest
from ssl_robustbench.results.evidence import read_evidence, to_bytes
from ssl_robustbench.results.leaderboard import board_tables
from ssl_robustbench.results.rows import ResultRow
from ssl_robustbench.results.significance import mcnemar_p, paired_difference
from ssl_robustbench.results.store import board_tables_of_store, load_store

from cardfactory import (
    attest,
    card_filename,
    card_object,
    make_card,
    operator_key_file,
    trust,
    verified,
    verified_store,
    write_card,
    write_store,
)


def test_boards_of_two_datasets_stay_apart():
    embedded = [card_object(f"emb-{i}", values=((("clean", 0), v),)) for i, v in enumerate((0.5, 0.3))]
    folder = card_object("random-folder", values=((("clean", 0), 0.95),), config="cd" * 8, dataset="folder",
                         eval_n=100)
    tables = board_tables([*embedded, folder], statuses=verified([*embedded, folder]))
    assert len(tables) == 2
    emb = next(t for t in tables.values() if "emb-0" in set(t["model"]))
    assert list(emb["model"]) == ["emb-0", "emb-1"] and list(emb["rank"]) == [1, 2]
    assert "random-folder" not in set(emb["model"])
    assert {t.attrs["title"] for t in tables.values()} == {"Clean · embedded test, 100 images · linear probe (lbfgs)",
                                                           "Clean · folder test, 100 images · linear probe (lbfgs)"}


def test_delta_clean_comes_from_the_cards_own_images_never_another_protocol():
    c = card_object("m", suite="c", values=((("clean", 0), 0.8), (("c:fog", 3), 0.5)))
    other_clean = card_object("m", values=((("clean", 0), 0.1),), config="ef" * 8)  # another protocol's clean card
    frame = next(t for t in board_tables([c, other_clean]).values() if t.attrs["suite"] == "c")
    assert frame.loc[0, "clean"] == pytest.approx(80.0) and frame.loc[0, "drop"] == pytest.approx(30.0)
    assert "Δ clean" not in frame  # the suite's drop already says it (with the opposite sign): no number twice


def test_rows_that_disagree_with_their_evidence_are_refused(tmp_path):
    card = make_card("honest", values=((("clean", 0), 0.2),))
    forged = copy.deepcopy(card)
    for row in forged["rows"]:
        row["value"] = 0.99
    forged["rows_sha256"] = rows_digest(forged["rows"])
    forged["aggregates"] = aggregate("clean", [ResultRow(**r) for r in forged["rows"]])
    path = write_card(tmp_path / "s", forged)
    (path.parent.parent / "evidence" / f"{path.stem}.parquet").write_bytes(
        (tmp_path / "s" / "evidence" / f"{path.stem}.parquet").read_bytes())
    from cardfactory import EVIDENCE

    (tmp_path / "s" / "evidence" / f"{path.stem}.parquet").write_bytes(EVIDENCE[card["evidence"]["sha256"]])
    with pytest.raises(CardError, match="claims 0.990000 on 100 images; its evidence gives 0.200000"):
        load_card_json(path)
    # editing the evidence too, without its sha256 in the card: refused by the digest
    records, _ = read_evidence(tmp_path / "s" / "evidence" / f"{path.stem}.parquet")
    (tmp_path / "s" / "evidence" / f"{path.stem}.parquet").write_bytes(
        to_bytes([dataclasses.replace(r, values=r.labels) for r in records]))
    with pytest.raises(CardError, match="evidence file's sha256 differs"):
        load_card_json(path)


def test_c_summary_rows_are_recomputed_not_read(tmp_path):
    card = make_card("m", suite="c", values=((("clean", 0), 0.8), (("c:fog", 3), 0.5), (("c:snow", 3), 0.3)))
    for row in card["rows"]:
        if row["condition"] == "c:all" and row["metric"] == "mean_top1":
            row["value"] = 0.9
    card["rows_sha256"] = rows_digest(card["rows"])
    card["aggregates"] = aggregate("c", [ResultRow(**r) for r in card["rows"]])
    path = write_card(tmp_path / "s", card)
    with pytest.raises(CardError, match="c:all mean_top1 claims 0.900000"):
        load_card_json(path)


def test_mcnemar_against_the_exact_binomial_and_paired_interval():
    assert mcnemar_p(10, 2) == pytest.approx(0.03857421875)  # 2 · P(X ≤ 2), X ~ Bin(12, ½)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == pytest.approx(1.0)
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 1], dtype=bool)
    d = paired_difference(a, b)
    assert (d["only_a"], d["only_b"]) == (2, 1) and d["difference"] == pytest.approx(1 / 8)
    assert d["ci95_low"] < d["difference"] < d["ci95_high"]


def test_neighbours_that_do_not_differ_significantly_share_a_rank(tmp_path):
    cards = [make_card("best", values=((("clean", 0), 0.55),), seed=1),
             make_card("close", values=((("clean", 0), 0.52),), seed=2),
             make_card("far", values=((("clean", 0), 0.10),), seed=3)]
    store = verified_store(tmp_path / "s", cards)
    loaded, errors = load_store(store)
    assert not errors
    frame = next(iter(board_tables_of_store(store, loaded).values()))
    assert list(frame["model"]) == ["best", "close", "far"] and list(frame["rank"]) == [1, 1, 3]
    assert not (store / ".cache").exists()  # caches live outside the store


def test_failed_verification_leaves_the_ranks(tmp_path):
    a = make_card("a", values=((("clean", 0), 0.9),), weights={"kind": "zoo", "zoo_id": "a"})
    b = make_card("b", values=((("clean", 0), 0.2),), weights={"kind": "zoo", "zoo_id": "b"})
    c = make_card("c", values=((("clean", 0), 0.95),), weights={"kind": "private"})  # self-reported, never ranked
    store = write_store(trust(tmp_path / "s"), [a, b, c])
    attest(store, a, "verified", date="2026-12-01T00:00:00+00:00")
    attest(store, a, "failed", date="2026-12-02T00:00:00+00:00")  # the latest signed record counts
    attest(store, b, "verified")
    frame = next(iter(board_tables_of_store(store, load_store(store)[0]).values())).set_index("model")
    assert frame.loc["a", "status"] == "failed" and frame.loc["a", "rank"] == "failed"
    assert frame.loc["b", "rank"] == 1 and frame.loc["b", "status"] == "verified"
    assert frame.loc["c", "rank"] == "self-reported" and frame.loc["c", "status"] == "private"
    assert list(frame.index) == ["b", "c", "a"]  # ranked, then self-reported, then failed


def test_hostile_store_files_are_one_error_line(tmp_path):
    store = write_store(tmp_path / "s", [make_card("good")])
    os.symlink("/dev/zero", store / "cards" / "zero__clean__abababab.json")
    os.mkfifo(store / "cards" / "fifo__clean__abababab.json")
    cards, errors = load_store(store)
    assert [c.model.id for c in cards] == ["good"]
    assert any("symbolic link" in e for e in errors) and any("not a regular file" in e for e in errors)
    (store / "LEADERBOARD.md").mkdir()
    result = CliRunner().invoke(main, ["leaderboard", "build", "--store", str(store)])
    assert result.exit_code == 2 and "must be a regular file" in result.output and "Traceback" not in result.output
    (store / "LEADERBOARD.md").rmdir()
    (store / ".lock").unlink(missing_ok=True)
    (store / ".lock").mkdir()
    result = CliRunner().invoke(main, ["leaderboard", "build", "--store", str(store)])
    assert result.exit_code == 2 and ".lock must be a regular file" in result.output
    missing = CliRunner().invoke(main, ["leaderboard", "build", "--store", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and not (tmp_path / "nowhere").exists()


def test_submit_refuses_look_alike_ids_and_repeats_are_no_ops(tmp_path):
    store = tmp_path / "store"
    first = write_card(tmp_path / "run1", make_card("resnet50-simclr"), name="clean.json")
    assert CliRunner().invoke(main, ["submit", str(first), "--to", str(store)]).exit_code == 0
    again = CliRunner().invoke(main, ["submit", str(first), "--to", str(store)])
    assert again.exit_code == 0 and "already in" in again.output
    for fake in ("resnet5o-simclr", "resnet50_simclr", "resnet50-sirnclr"):
        path = write_card(tmp_path / fake, make_card(fake), name="clean.json")
        result = CliRunner().invoke(main, ["submit", str(path), "--to", str(store)])
        assert result.exit_code == 2 and "reads like 'resnet50-simclr'" in result.output, result.output
    empty = CliRunner().invoke(main, ["submit", str(first), "--to", ""])
    assert empty.exit_code == 2 and "--to needs a store" in empty.output


def test_validation_is_cached_by_card_and_evidence(tmp_path, monkeypatch):
    store = write_store(tmp_path / "s", [make_card(f"m-{i}", values=((("clean", 0), 0.1 * i),)) for i in range(3)])
    assert len(load_store(store)[0]) == 3
    import ssl_robustbench.results.card as card_module

    calls = []
    original = card_module.check_rows_against_evidence
    monkeypatch.setattr(card_module, "check_rows_against_evidence",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    assert len(load_store(store)[0]) == 3 and calls == []  # nothing new: no evidence read
    path = store / "evidence" / f"{card_filename(make_card('m-1', values=((('clean', 0), 0.1),)))[:-5]}.parquet"
    data = path.read_bytes()
    path.write_bytes(data[:-10] + b"0" * 10)  # the evidence changed: the card is checked again, and refused
    cards, errors = load_store(store)
    assert len(cards) == 2 and len(errors) == 1 and "m-1" in errors[0]


def test_evidence_of_a_full_imagenet_c_run_fits_the_budget():
    from ssl_robustbench.results.evidence import image_evidence

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, 50000)
    records = [image_evidence(f"c:{k}", 1, "pred", np.where(rng.random(50000) < 0.6, labels,
                                                           rng.integers(0, 1000, 50000)), labels)
               for k in range(84)]
    assert len(to_bytes(records)) <= 10 * 2**20


def test_verify_passes_a_genuine_run_and_fails_a_rehashed_forgery(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--model", "embedded-simclr-tinyresnet", "--device", "cpu",
                                       "--set", "data.eval_limit=120", "--out", str(out)])
    assert result.exit_code == 0, result.output
    store = trust(tmp_path / "store")
    assert CliRunner().invoke(main, ["submit", str(out), "--to", str(store)]).exit_code == 0
    key = operator_key_file(tmp_path / "operator")
    genuine = CliRunner().invoke(main, ["verify", str(out), "--store", str(store), "--sign", str(key),
                                        "--images", "60"])
    assert genuine.exit_code == 0 and "verified:" in genuine.output, genuine.output
    frame = next(iter(board_tables_of_store(store, load_store(store)[0]).values()))
    assert list(frame["status"]) == ["verified"]
    # a forger makes the model look perfect: evidence, rows, aggregates and both digests recomputed
    card_path = out / "cards" / "clean.json"
    records, _ = read_evidence(out / "evidence" / "clean.parquet")
    data = to_bytes([dataclasses.replace(r, values=r.labels) for r in records])
    (out / "evidence" / "clean.parquet").write_bytes(data)
    card = json.loads(card_path.read_text())
    for row in card["rows"]:
        row["value"] = 1.0
    card["rows_sha256"] = rows_digest(card["rows"])
    card["aggregates"] = aggregate("clean", [ResultRow(**r) for r in card["rows"]])
    card["evidence"]["sha256"] = hashlib.sha256(data).hexdigest()
    card_path.write_text(json.dumps(card))
    load_card_json(card_path)  # it validates: only a re-run can catch it
    forged = CliRunner().invoke(main, ["verify", str(card_path), "--images", "60"])
    assert forged.exit_code == 1 and "failed:" in forged.output and "per-image results differ" in forged.output


def test_compare_prints_paired_differences_of_one_board(tmp_path):
    store = write_store(tmp_path / "s", [make_card("a", values=((("clean", 0), 0.9),), seed=1),
                                         make_card("b", values=((("clean", 0), 0.2),), seed=2)])
    cards = sorted((store / "cards").glob("*.json"))
    result = CliRunner(env={"COLUMNS": "160"}).invoke(main, ["compare", str(cards[0]), str(cards[1])])
    assert result.exit_code == 0, result.output
    assert "clean@0" in result.output and "+70.00" in result.output
    assert "McNemar p" in result.output and "ranked conditions pooled" in result.output


def test_models_across_boards_side_by_side_never_averaged():
    from ssl_robustbench.results.leaderboard import model_summary

    cards = [card_object("a", values=((("clean", 0), 0.9),)), card_object("b", values=((("clean", 0), 0.7),)),
             card_object("a", values=((("clean", 0), 0.5),), config="ef" * 8),  # the same suite, another protocol
             card_object("b", suite="pd", values=((("clean", 0), 0.8), (("pd:left/black", 0), 0.4)))]
    summary = model_summary(board_tables(cards, statuses=verified(cards))).set_index("model")
    clean_columns = [c for c in summary.columns if c.startswith("Clean mean_top1 [")]
    assert len(clean_columns) == 2  # two protocols: two columns, not one mean
    assert sorted(summary.loc["a", clean_columns].tolist()) == pytest.approx([50.0, 90.0])
    pd_column = next(c for c in summary.columns if c.startswith("ImageNet-PD"))
    assert summary.loc["b", pd_column] == pytest.approx(40.0) and summary.loc["a", pd_column] != summary.loc[
        "a", pd_column]  # NaN: a is not on the PD board
    # a card that is not ranked never reads as a ranked score: its number says why
    flagged = card_object("c", suite="adversarial", values=((("slf/aa", 0), 0.7),), flags=("zero gradients",))
    unverified = card_object("d", values=((("clean", 0), 0.95),))
    summary = model_summary(board_tables([*cards, flagged, unverified], statuses=verified([*cards, flagged])))
    cells = set(summary.astype(str).to_numpy().ravel())
    assert "70.00 (unranked ⚠ zero gradients)" in cells and "95.00 (self-reported)" in cells
