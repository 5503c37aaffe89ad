"""Red team: forged cards built with the project's own functions — every digest, row and aggregate consistent —
must be refused, unranked or failed, and a genuine card verified. Each test is one kind of forgery (issue 39); they
are examples of the rule "a rank is a fact the store established", not its definition."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ssl_robustbench.cli import main
from ssl_robustbench.results.card import (
    CardError,
    load_card_json,
    parse_card,
    rows_digest,
)
from ssl_robustbench.results.evidence import EvidenceError, from_bytes, image_evidence, read_evidence, to_bytes
from ssl_robustbench.results.leaderboard import board_tables
from ssl_robustbench.results.store import board_tables_of_store, load_store
from ssl_robustbench.verification import escape_chance, sample_size

from cardfactory import (
    EVIDENCE,
    attest,
    card_filename,
    card_object,
    make_card,
    operator_key_file,
    rehash,
    trust,
    verified_store,
    write_card,
    write_store,
)

# --- 1. derived, never declared ----------------------------------------------------------------------------------


def test_a_declared_board_key_is_refused_and_a_title_comes_from_the_protocol():
    genuine = make_card("embedded-simclr-tinyresnet", n=200)
    folder = make_card("random-folder", values=((("clean", 0), 1.0),), dataset="imagefolder", n=20)
    folder["protocol"]["config_hash"] = genuine["protocol"]["config_hash"]  # claims the embedded board
    for row in folder["rows"]:
        row["config_hash"] = genuine["protocol"]["config_hash"]
    folder["rows_sha256"] = rows_digest(folder["rows"])
    with pytest.raises(CardError, match="not the digest of the card's protocol"):
        parse_card(folder)
    # its honest hash puts it on a board of its own, titled by its own protocol
    tables = board_tables([parse_card(genuine), parse_card(make_card("random-folder", dataset="imagefolder", n=20))])
    assert len(tables) == 2
    assert {t.attrs["title"].split(" · ")[1] for t in tables.values()} == {"embedded test, 200 images",
                                                                          "imagefolder test, 20 images"}


def test_boards_are_keyed_by_the_full_hash_never_a_prefix():
    a, b = card_object("a"), card_object("b")
    # two protocols whose hashes share their first 16 hex digits (as a forger grinding a prefix would make)
    b = dataclasses.replace(b, protocol=dataclasses.replace(b.protocol, config_hash=a.protocol.config_hash[:16]
                                                            + "0" * 48))
    tables = board_tables([a, b])
    assert len(tables) == 2 and len(set(tables)) == 2


def test_evidence_must_cover_the_whole_evaluation_set_with_its_labels(tmp_path):
    one = make_card("one-image", values=((("clean", 0), 1.0),), n=1, eval_n=2000)
    with pytest.raises(CardError, match="covers 1 of the evaluation data's 2000 images"):
        load_card_json(write_card(tmp_path / "one", one))
    # labels shifted by one class: all images, all 'right', but not the evaluation data's labels
    genuine = make_card("honest", n=100)
    records = from_bytes(EVIDENCE[genuine["evidence"]["sha256"]])
    shifted = [dataclasses.replace(r, labels=(r.labels + 1) % 10, values=(r.labels + 1) % 10) for r in records]
    forged = rehash(copy.deepcopy(genuine), shifted)
    path = write_card(tmp_path / "s", forged)
    with pytest.raises(CardError, match="labels of clean@0 are not the evaluation data's"):
        load_card_json(path)


def test_a_subset_of_a_shift_suite_is_another_board_and_cannot_claim_the_genuine_images(tmp_path):
    values = ((("clean", 0), 0.8), (("pd:left/black", 0), 0.4))
    genuine = make_card("honest", suite="pd", values=values, n=100)
    small = make_card("cherry-picked", suite="pd", values=((("clean", 0), 1.0), (("pd:left/black", 0), 1.0)), n=5)
    tables = board_tables([parse_card(genuine), parse_card(small)])
    assert len(tables) == 2  # scored on other images: never ranked beside the genuine card
    # claiming the genuine image set while holding five images: the evidence says otherwise
    small["protocol"]["images"] = genuine["protocol"]["images"]
    small["protocol"]["subset_size"] = 100
    forged = rehash(small)
    with pytest.raises(CardError, match="rows where the card's image set has|another image set"):
        load_card_json(write_card(tmp_path / "s", forged))


# --- 2. verification a forger cannot aim at ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def genuine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "genuine"
    result = CliRunner().invoke(main, ["eval", "--model", "embedded-simclr-tinyresnet", "--device", "cpu",
                                       "--set", "data.eval_limit=300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


def _forge_run(run: Path, values_of) -> Path:
    """Rewrites a run's clean card and evidence: ``values_of(record, old_seed0_sample)`` gives the new values."""
    card_path = run / "cards" / "clean.json"
    records, _ = read_evidence(run / "evidence" / "clean.parquet")
    seed0 = np.sort(np.random.default_rng(0).choice(len(records[0].index), size=100, replace=False))
    forged = [dataclasses.replace(r, values=values_of(r, seed0)) for r in records]
    data = to_bytes(forged)
    (run / "evidence" / "clean.parquet").write_bytes(data)
    card = json.loads(card_path.read_text())
    card["evidence"]["sha256"] = hashlib.sha256(data).hexdigest()
    card_path.write_text(json.dumps(rehash(card, forged)))
    load_card_json(card_path)  # consistent: it validates on its own
    return run


def test_a_card_right_outside_the_old_fixed_sample_fails_a_fresh_one(genuine_run, tmp_path):
    def right_except_seed0_sample(r, seed0):
        values = r.labels.copy()
        values[seed0] = r.values[seed0]  # the images seed 0 would check keep the model's real answers
        return values

    forged = _forge_run(_copy_run(genuine_run, tmp_path / "forged"), right_except_seed0_sample)
    result = CliRunner().invoke(main, ["verify", str(forged)])
    assert result.exit_code == 1 and "failed:" in result.output, result.output
    # the genuine card passes, each verification draws its own sample, and a seed replays one
    runs = [CliRunner().invoke(main, ["verify", str(genuine_run)]) for _ in range(2)]
    seeds = {r.output.split("sample seed ")[1].split(")")[0] for r in runs}
    assert all(r.exit_code == 0 and "verified:" in r.output for r in runs) and len(seeds) == 2
    replay = CliRunner().invoke(main, ["verify", str(genuine_run), "--seed", seeds.pop()])
    assert replay.exit_code == 0 and "verified:" in replay.output


def test_a_head_fitted_on_the_test_split_fails_refit(genuine_run, tmp_path):
    out = tmp_path / "test-head"
    result = CliRunner().invoke(main, ["eval", "--model", "embedded-simclr-tinyresnet", "--device", "cpu",
                                       "--set", "data.eval_limit=300", "--set", "data.train_split=test",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    honest = json.loads((genuine_run / "cards" / "clean.json").read_text())
    card = json.loads((out / "cards" / "clean.json").read_text())
    card["protocol"]["train_data"] = honest["protocol"]["train_data"]  # claims the standard protocol
    (out / "cards" / "clean.json").write_text(json.dumps(rehash(card)))
    assert load_card_json(out / "cards" / "clean.json").aggregates["mean_top1"] > honest["aggregates"]["mean_top1"]
    refit = CliRunner().invoke(main, ["verify", str(out), "--refit"])
    assert refit.exit_code == 1 and "head refit" in refit.output, refit.output
    genuine = CliRunner().invoke(main, ["verify", str(genuine_run), "--refit"])
    assert genuine.exit_code == 0 and "verified:" in genuine.output, genuine.output


def test_the_stated_power_is_the_hypergeometric_tail():
    from math import comb

    n, m, forged = 300, sample_size(300, True), 6  # ⌈2 % of 300⌉
    exact = sum(comb(forged, k) * comb(n - forged, m - k) for k in range(2)) / comb(n, m)  # allowance 1 (m < 200)
    assert m < 200 and escape_chance(n, m, True) == pytest.approx(exact) and exact <= 0.05
    assert escape_chance(n, m - 1, True) > 0.05  # the smallest such sample
    assert sample_size(500, False) >= 490  # an attack's statistics need (nearly) the whole set to catch 2 points


# --- 3. a trust root ---------------------------------------------------------------------------------------------


def _status(store: Path) -> dict[str, tuple]:
    tables = board_tables_of_store(store, load_store(store)[0])
    return {m: (r, s) for t in tables.values() for m, r, s in zip(t["model"], t["rank"], t["status"], strict=True)}


def test_side_files_change_nothing_without_an_operators_signature(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    honest = make_card("honest", values=((("clean", 0), 0.6),), seed=1)
    forged = make_card("forged", values=((("clean", 0), 0.99),), seed=2)
    store = write_store(trust(tmp_path / "s"), [honest, forged])
    record = attest(store, honest)
    # a genuine record copied onto the forged card: it names the honest card's bytes
    (store / "verifications" / f"{card_filename(forged)[:-5]}.json").write_text(
        json.dumps({"card": card_filename(forged), "records": [record]}))
    # unsigned, foreign-key and other-store records for the forged card; an unsigned "failed" for the honest one
    outsider = Ed25519PrivateKey.generate()
    attest(store, forged, key=outsider)
    attest(store, forged, store_name="another-store")
    path = store / "verifications" / f"{card_filename(honest)[:-5]}.json"
    data = json.loads(path.read_text())
    data["records"].append({"payload": {**record["payload"], "outcome": "failed",
                                        "date": "2099-01-01T00:00:00+00:00"}})
    path.write_text(json.dumps(data))
    # a committed pair cache claiming the two never differ
    (store / ".cache").mkdir()
    (store / ".cache" / "pairs.json").write_text(json.dumps({f"{a}:{b}": [0, 0] for a in "ab" for b in "ab"}))
    status = _status(store)
    assert status["honest"] == (1, "verified") and status["forged"] == ("self-reported", "unverified")


def test_a_replayed_older_record_never_outranks_the_latest(tmp_path):
    card = make_card("m", values=((("clean", 0), 0.6),))
    store = write_store(trust(tmp_path / "s"), [card])
    old_failed = attest(store, card, "failed", date="2026-11-01T00:00:00+00:00")
    attest(store, card, "verified", date="2026-12-01T00:00:00+00:00")
    path = store / "verifications" / f"{card_filename(card)[:-5]}.json"
    data = json.loads(path.read_text())
    data["records"].append(old_failed)  # replayed after the newer one
    path.write_text(json.dumps(data))
    assert _status(store)["m"] == (1, "verified")
    # a record of an earlier version of the card (other bytes) does not count for the card as it is now
    edited = copy.deepcopy(card)
    edited["hardware"] = {"device": "edited"}
    (store / "cards" / card_filename(card)).write_text(json.dumps(edited))
    assert _status(store)["m"] == ("self-reported", "unverified")


def test_verify_refuses_to_record_unsigned_or_with_a_stranger_key(genuine_run, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    store = trust(tmp_path / "store")
    assert CliRunner().invoke(main, ["submit", str(genuine_run), "--to", str(store)]).exit_code == 0
    unsigned = CliRunner().invoke(main, ["verify", str(genuine_run), "--store", str(store)])
    assert unsigned.exit_code == 2 and "--sign" in unsigned.output
    stranger = operator_key_file(tmp_path / "stranger", Ed25519PrivateKey.generate())
    foreign = CliRunner().invoke(main, ["verify", str(genuine_run), "--store", str(store), "--sign", str(stranger)])
    assert foreign.exit_code == 2 and "not an operator key" in foreign.output
    signed = CliRunner().invoke(main, ["verify", str(genuine_run), "--store", str(store), "--sign",
                                       str(operator_key_file(tmp_path / "operator"))])
    assert signed.exit_code == 0, signed.output
    assert _status(store)["embedded-simclr-tinyresnet"] == (1, "verified")


# --- 4. what gets a rank -----------------------------------------------------------------------------------------


def test_private_and_unverified_cards_are_self_reported_below_the_ranked(tmp_path):
    ranked = make_card("ranked", values=((("clean", 0), 0.5),))
    private = make_card("private-perfect", values=((("clean", 0), 1.0),), weights={"kind": "private"})
    unverified = make_card("unchecked", values=((("clean", 0), 0.9),))
    store = write_store(trust(tmp_path / "s"), [ranked, private, unverified])
    attest(store, ranked)
    tables = board_tables_of_store(store, load_store(store)[0])
    (frame,) = tables.values()
    assert list(frame["model"]) == ["ranked", "private-perfect", "unchecked"]
    assert list(frame["rank"]) == [1, "self-reported", "self-reported"]


def test_a_url_card_that_verify_cannot_rebuild_is_refused():
    card = make_card("url-model", weights={"kind": "url", "url": "https://example.org/w.pth",
                                           "zoo_card": {"id": "url-model", "arch": "no such arch"}})
    with pytest.raises(CardError, match="cannot rebuild the model"):
        parse_card(card)


# --- 5. identity and limits at validation ------------------------------------------------------------------------

LOOKALIKES = ["ennbedded-simclr-tinyresnet", "embedded-simclr-tinyrcsnet", "embedded-simclr-tinyresnel",
              "embeded-simclr-tinyresnet", "embedded_simclr_tinyresnet", "embedded-simclr-tinyrenset",
              "ernbedded-simclr-tinyresnet", "embedded-sinclr-tinyresnet", "embedded-simclr-tiny-resnet",
              "embedded-simc1r-tinyresnet", "embedded-simclr-tinyresnet.", "embedded.simclr.tinyresnet"]


def test_lookalike_ids_written_straight_into_the_store_are_refused(tmp_path):
    from ssl_robustbench.results.card import ID_PATTERN

    valid = [i for i in LOOKALIKES if ID_PATTERN.fullmatch(i)]
    cards = [make_card(i, values=((("clean", 0), 0.99),), seed=k) for k, i in enumerate(valid)]
    store = write_store(tmp_path / "s", [make_card("embedded-simclr-tinyresnet"), *cards])  # a pull request
    loaded, errors = load_store(store)
    assert [c.model.id for c in loaded] == ["embedded-simclr-tinyresnet"]  # the zoo id stays
    assert len(errors) == len(valid) and all("reads like" in e for e in errors)
    # distinct models whose ids differ in a short code are not look-alikes
    distinct = [make_card(i) for i in ("dino-vitb16", "dino-vits16", "mocov2-resnet50", "mocov3-resnet50")]
    assert not load_store(write_store(tmp_path / "t", distinct))[1]


def test_evidence_bounds_are_read_from_the_footer_before_decompression(monkeypatch):
    sink = io.BytesIO()  # 3 million zero rows: a few kB compressed, far past the row limit
    pq.write_table(pa.table({"index": pa.array(np.zeros(3_000_000, dtype=np.int32))}), sink, compression="zstd")
    data = sink.getvalue()
    assert len(data) < 200_000
    monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("decompressed before the bounds check"))
    with pytest.raises(EvidenceError, match="exceed the limits"):
        from_bytes(data)
    small = to_bytes([image_evidence("clean", 0, "pred", [1, 2], [1, 2])])
    with pytest.raises(EvidenceError, match="2 rows where the card's image set has 3"):
        from_bytes(small, rows=3)


def test_the_shipped_workflow_runs_on_every_pull_request_and_refuses_side_files():
    import yaml
    from conftest import REPO

    workflow = yaml.safe_load((REPO / "results" / "verify-workflow.yml").read_text())
    trigger = workflow.get("on", workflow.get(True))
    assert trigger["pull_request"] in (None, {}) or "paths" not in trigger["pull_request"]
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["verify"]["steps"])
    assert "verifications/" in steps and ".cache" in steps and "--refit" in steps


def test_the_shipped_store_verifies_with_the_projects_key():
    from conftest import REPO

    store = REPO / "results"
    loaded, errors = load_store(store)
    assert not errors and loaded
    status = _status(store)
    assert status and all(s == "verified" for _, s in status.values()), status


def test_a_genuine_store_ranks_every_verified_card(tmp_path):
    cards = [make_card(f"m-{i}", values=((("clean", 0), 0.3 + 0.2 * i),), seed=i) for i in range(3)]
    status = _status(verified_store(tmp_path / "s", cards))
    assert sorted(status.values()) == [(1, "verified"), (2, "verified"), (3, "verified")]
