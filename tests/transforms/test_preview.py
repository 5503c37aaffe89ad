"""``robustbench augment preview``: rows labelled in words (never a truncated Python dict)."""

from __future__ import annotations

import torch

from ssl_robustbench.transforms.preview import preview_rows


def test_preview_rows_are_labelled_with_readable_settings():
    x = torch.rand(2, 3, 32, 32)
    rows = preview_rows(x, ["mpd", "lcm"], method="simclr", view_size=32, seed=0)
    labels = [label for label, _ in rows]
    assert labels[0] == "original"
    assert labels[1].startswith("mpd (simclr preset): ") and "low 0.2" in labels[1] and "high 0.4" in labels[1]
    assert not any("{" in label or "'" in label for label in labels), labels
    assert all(images.shape == x.shape for _, images in rows)


def test_annotated_rows_show_boxes_moving_with_each_geometric_view():
    from ssl_robustbench.transforms.preview import annotated_rows

    x = torch.full((3, 3, 48, 48), 0.5)
    rows = annotated_rows(x, ["mpd", "lcm", "colorjitter"], seed=0)
    assert [label.split(" ")[0] for label, _ in rows] == ["original,", "mpd", "lcm"]  # no geometry: no row
    for _, images in rows:
        assert images.shape == x.shape
        red = (images[:, 0] > 0.85) & (images[:, 1] < 0.2)  # the drawn box outlines
        assert red.any(dim=(1, 2)).all()
    assert not torch.equal(rows[0][1], rows[1][1])  # the boxes moved
