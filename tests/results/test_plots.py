"""Leaderboard plots: axes fit the data, a measured zero reads as a zero, titles name the board's protocol."""

from __future__ import annotations

import pandas as pd
import pytest

from ssl_robustbench.results import plots

from cardfactory import card_object

PD = [(("clean", 0), 0.8), (("pd:left/black", 0), 0.0), (("pd:left/padded", 0), 0.03)]


@pytest.fixture
def figures(monkeypatch, tmp_path):
    """The figures ``render_plots`` makes, by file name (captured before they are closed)."""
    made = {}
    real = plots._save

    def keep(fig, path):
        made[path.name] = fig
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setattr(plots._pyplot(), "close", lambda fig: None)
    return made


def test_scatter_axes_fit_points_near_zero(figures, tmp_path):
    cards = [card_object(f"m-{i}", suite="pd", values=[(("clean", 0), 0.1 + 0.02 * i),
                                                        (("pd:left/black", 0), 0.01 * i),
                                                        (("pd:left/padded", 0), 0.02 * i)]) for i in range(1, 4)]
    plots.render_plots(cards, tmp_path)
    (ax,) = [f for name, f in figures.items() if name.endswith("_vs_clean.png")][0].axes
    low, high = ax.get_ylim()
    assert high < 20, "points between 1 and 4 % are not drawn on a 0–100 axis"
    assert low <= 1.5 and high >= 4.0  # every point inside
    x0, x1 = ax.get_xlim()
    assert x0 >= 5 and x1 <= 25


def test_a_measured_zero_is_labelled_and_a_missing_condition_too(figures, tmp_path):
    # cards of one board share their conditions (the image set is part of the board key); the plot is also drawn
    # for any list of cards, where a condition one card lacks reads "n/m", never 0
    cards = [card_object("zero", suite="pd", values=PD), card_object("partial", suite="pd", values=PD[:2])]
    board = pd.DataFrame()
    board.attrs.update(suite="pd", title="PD", rank_by="mean_top1", cards=[c.filename for c in cards])
    plots.render_plots(cards, tmp_path, tables={"pd-x": board})
    (ax,) = [f for name, f in figures.items() if name.endswith("_by_condition.png")][0].axes
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("0") == 2  # both models measured 0 on the black view
    assert texts.count("n/m") == 1  # one bar missing: not measured, not zero


def test_titles_name_the_boards_protocol(figures, tmp_path):
    cards = [card_object("m", suite="pd", values=PD)]
    plots.render_plots(cards, tmp_path)
    for fig in figures.values():
        title = fig.axes[0].get_title()
        assert "ImageNet-PD" in title and "linear probe" in title, title
