"""Effective robustness (Taori et al. 2020) against a hand computation, and on a board."""

from __future__ import annotations

import math

import pytest

from ssl_robustbench.results.effective_robustness import effective_robustness, linear_fit, logit

from cardfactory import card_object, verified


def test_models_on_the_logit_line_have_zero_effective_robustness():
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    clean = [0.5, 0.6, 0.7, 0.8]
    ood = [sig(0.8 * logit(c) - 1.0) for c in clean]  # exactly on logit(ood) = 0.8 logit(clean) − 1
    slope, intercept = linear_fit(clean, ood)
    assert slope == pytest.approx(0.8) and intercept == pytest.approx(-1.0)
    assert effective_robustness(clean, ood) == pytest.approx([0, 0, 0, 0], abs=1e-9)
    lifted = [ood[0], ood[1] + 0.08, *ood[2:]]  # one model 8 points above the others' line
    er = effective_robustness(clean, lifted)
    assert er[1] == pytest.approx(0.08)  # leave-one-out: it is measured against the others' line, not its own
    assert er[1] == max(er) and all(e < 0 for i, e in enumerate(er) if i != 1)  # it pulls the others' fits up


def test_fewer_than_three_baseline_models_have_no_fit():
    assert effective_robustness([0.5, 0.6, 0.7], [0.3, 0.4, 0.5]) is None  # two others each: no fit
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    clean = [0.5, 0.6, 0.7, 0.8, 0.9]
    ood = [sig(0.8 * logit(c) - 1.0) for c in clean]
    ood[4] += 0.05  # a self-reported card: outside the baseline, measured against it
    er = effective_robustness(clean, ood, baseline=[True, True, True, True, False])
    assert er[4] == pytest.approx(0.05) and er[:4] == pytest.approx([0, 0, 0, 0], abs=1e-9)


def test_board_column_for_shift_suites():
    from ssl_robustbench.results.leaderboard import board_tables

    def values(i):  # m-2 is 2 points above the trend of the others
        return (("clean", 0), 0.4 + 0.1 * i), (("pd:left/black", 0), 0.2 + 0.05 * i + 0.02 * (i == 2))

    cards = [card_object(f"m-{i}", suite="pd", values=values(i)) for i in range(4)]
    (frame,) = board_tables(cards, statuses=verified(cards)).values()
    frame = frame.set_index("model")
    assert "eff. robustness" in frame
    assert frame.loc["m-2", "eff. robustness"] == frame["eff. robustness"].max()
    two = board_tables(cards[:3], statuses=verified(cards))  # two others each: no leave-one-out fit
    assert "eff. robustness" not in next(iter(two.values()))
