"""MPD and LCM as torchvision v2 transforms for boxes, masks and key points (issue 35): boxes against the box of
the warped filled-rectangle mask, points against the peak of the warped one-hot image, the image against the
batched view generators' pixels, vanished boxes dropped with their labels."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ssl_robustbench.transforms.geometric import VIEWS, LogConformal, MobiusPerspective
from ssl_robustbench.transforms.lcm import lcm_warp
from ssl_robustbench.transforms.mobius import mobius_warp

H, W = 64, 80
LCM_PARAMS = [{"lam": [0.6 * math.cos(a), 0.6 * math.sin(a)], "zoom": 1.1, "theta": 0.2}
              for a in (0.3, 2.0, 4.2)]


def _cases():
    for background in ("black", "padded"):
        for view in VIEWS:
            yield MobiusPerspective(view=view, high=0.3, background=background), None
        for params in LCM_PARAMS:
            yield LogConformal(background=background), params


CASES = list(_cases())
IDS = [f"{type(t).__name__}-{t.background}-{getattr(t, 'view', None) or i}" for i, (t, _) in enumerate(CASES)]


def _params(t, fixed):
    return {"apply": True, **(fixed if fixed is not None else t.sample())}


def _random_boxes(n, g, margin=2):
    x1 = torch.randint(margin, W - 14, (n,), generator=g).float()
    y1 = torch.randint(margin, H - 14, (n,), generator=g).float()
    w = torch.randint(6, 12, (n,), generator=g).float()
    h = torch.randint(6, 12, (n,), generator=g).float()
    return torch.stack((x1, y1, (x1 + w).clamp(max=W - margin), (y1 + h).clamp(max=H - margin)), 1)


@pytest.mark.parametrize("t, fixed", CASES, ids=IDS)
def test_each_warped_box_is_the_box_of_its_warped_mask(t, fixed):
    params = _params(t, fixed)
    boxes = _random_boxes(12, torch.Generator().manual_seed(1))
    got = t.transform(tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(H, W)), params)
    checked = 0
    for box, warped in zip(boxes.tolist(), got.tolist(), strict=True):
        # the filled rectangle, drawn and warped at 4× the resolution (the same map in normalized coordinates), so
        # the reference's own pixel sampling adds a quarter pixel, not one
        x1, y1, x2, y2 = (int(4 * v) for v in box)
        mask = torch.zeros(1, 4 * H, 4 * W, dtype=torch.uint8)
        mask[0, y1:y2, x1:x2] = 1
        region = t.transform(tv_tensors.Mask(mask), params)[0].nonzero()
        if len(region) == 0:
            assert warped[2] - warped[0] < 1 or warped[3] - warped[1] < 1, "a box whose region vanished"
            continue
        want = [region[:, 1].min().item() / 4, region[:, 0].min().item() / 4, (region[:, 1].max().item() + 1) / 4,
                (region[:, 0].max().item() + 1) / 4]
        assert all(abs(a - b) <= 1.0 for a, b in zip(warped, want, strict=True)), (box, warped, want)
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("t, fixed", CASES, ids=IDS)
def test_each_warped_point_lands_on_the_warped_one_hot_peak(t, fixed):
    params = _params(t, fixed)
    g = torch.Generator().manual_seed(2)
    points = torch.stack((torch.randint(3, W - 3, (20,), generator=g), torch.randint(3, H - 3, (20,), generator=g)),
                         1).float()
    moved = t.transform(tv_tensors.KeyPoints(points, canvas_size=(H, W)), params)
    checked = 0
    for (x, y), (mx, my) in zip(points.long().tolist(), moved.tolist(), strict=True):
        one_hot = torch.zeros(1, H, W)
        one_hot[0, y, x] = 1.0
        warped = t.transform(tv_tensors.Image(one_hot), params)[0]
        if warped.max() <= 0 or not (0 <= mx <= W - 1 and 0 <= my <= H - 1):
            continue  # the point left the image, or fell between the output's samples
        py, px = divmod(int(warped.argmax()), W)
        assert abs(px - mx) <= 1.0 and abs(py - my) <= 1.0, ((x, y), (mx, my), (px, py))
        checked += 1
    assert checked >= 10


def test_the_image_path_is_the_view_generators_pixels():
    x = torch.rand(3, H, W)
    for view, (sx, sy) in VIEWS.items():
        for background in ("black", "padded"):
            t = MobiusPerspective(view=view, high=0.3, d=0.75, background=background)
            got = t.transform(tv_tensors.Image(x), _params(t, None))
            want = mobius_warp(x[None], torch.tensor([0.3 * sx]), torch.tensor([0.3 * sy]), d=0.75,
                               background=background)[0]
            assert torch.equal(got, want), (view, background)
    t, params = LogConformal(), LCM_PARAMS[0]
    lam = params["lam"]
    want = lcm_warp(x[None], torch.tensor([lam[0]]), torch.tensor([lam[1]]), zoom=params["zoom"],
                    rotation=params["theta"])[0]
    assert torch.equal(t.transform(tv_tensors.Image(x), _params(t, params)), want)


def test_one_sample_one_map_and_vanished_boxes_go_with_their_labels():
    torch.manual_seed(0)
    image = tv_tensors.Image(torch.rand(3, H, W))
    corners = torch.tensor([[0, 0, 4, 4], [76, 0, 80, 4], [30, 20, 50, 40]], dtype=torch.float32)
    target = {"boxes": tv_tensors.BoundingBoxes(corners, format="XYXY", canvas_size=(H, W)),
              "masks": tv_tensors.Mask(torch.zeros(3, H, W, dtype=torch.uint8)),
              "keypoints": tv_tensors.KeyPoints(torch.tensor([[40.0, 32.0]]), canvas_size=(H, W)),
              "labels": torch.tensor([7, 8, 9])}
    out_image, out = MobiusPerspective(view="left", high=0.4)(image, target)
    assert out["labels"].tolist() == [8, 9]  # the top-left corner box left the image with the strong left view
    assert isinstance(out["boxes"], tv_tensors.BoundingBoxes) and out_image.shape == image.shape
    # the centre stays near the centre (f(0) = 0): the same map for the point and the image
    assert abs(out["keypoints"][0, 0].item() - 39.5) < 1.5 and abs(out["keypoints"][0, 1].item() - 31.5) < 1.5


@pytest.mark.parametrize("fmt", ["XYWH", "CXCYWH"])
def test_box_formats_are_kept(fmt):
    t = MobiusPerspective(view="top", high=0.2)
    boxes = v2.functional.convert_bounding_box_format(
        tv_tensors.BoundingBoxes(torch.tensor([[20.0, 20.0, 40.0, 36.0]]), format="XYXY", canvas_size=(H, W)),
        new_format=getattr(tv_tensors.BoundingBoxFormat, fmt))
    out = t.transform(boxes, _params(t, None))
    assert out.format == boxes.format
    back = v2.functional.convert_bounding_box_format(out, new_format=tv_tensors.BoundingBoxFormat.XYXY)
    xyxy = t.transform(v2.functional.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY),
                       _params(t, None))
    assert torch.allclose(back, xyxy, atol=1e-4)


def test_bad_settings_are_refused():
    from ssl_robustbench.errors import UserError

    with pytest.raises(UserError, match="view must be one of"):
        MobiusPerspective(view="diagonal")
    with pytest.raises(UserError, match="p must be in"):
        LogConformal(p=1.5)
    with pytest.raises(UserError, match="background must be one of"):
        MobiusPerspective(background="mirror")


def test_visible_part_of_a_region_has_no_zero_area_edges():
    """A non-convex outline that leaves the image and comes back: its visible part is two pieces, and its box spans
    only them (a Sutherland–Hodgman clip joins them along the side and stretches the box to the corner)."""
    import numpy as np

    from ssl_robustbench.transforms.regions import clip_polygon, polygon_area, tight_box, visible_points

    u_shape = np.array([[1.0, -2.0], [2.0, -2.0], [2.0, 1.0], [3.0, 1.0], [3.0, -2.0], [4.0, -2.0], [4.0, 2.0],
                        [1.0, 2.0]])  # a U whose arms stick out of the top of a 5×5 image
    assert tight_box(visible_points(u_shape, 5.0, 5.0)) == [1.0, 0.0, 4.0, 2.0]
    around = np.array([[-3.0, -3.0], [4.0, -3.0], [4.0, -1.0], [-1.0, -1.0], [-1.0, 4.0], [-3.0, 4.0]])
    assert tight_box(visible_points(around, 5.0, 5.0)) is None  # an L around the corner, all of it outside
    ring = np.array([[-1.0, -1.0], [6.0, -1.0], [6.0, 6.0], [-1.0, 6.0]])
    assert tight_box(visible_points(ring, 5.0, 5.0, outside=True)) is None  # its outside misses the image
    assert tight_box(visible_points(ring, 5.0, 5.0)) == [0.0, 0.0, 5.0, 5.0]
    square = clip_polygon([[-1.0, -1.0], [3.0, -1.0], [3.0, 3.0], [-1.0, 3.0]], 2.0, 2.0)
    assert polygon_area(square) == pytest.approx(4.0)
    assert len(clip_polygon([[5.0, 5.0], [6.0, 5.0], [6.0, 6.0]], 2.0, 2.0)) == 0


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64])
def test_masks_of_every_dtype_keep_it(dtype):
    t = MobiusPerspective(view="right", high=0.3)
    mask = torch.zeros(2, H, W, dtype=dtype)
    mask[:, 20:40, 30:50] = 1 if dtype != torch.int64 else 7  # instance ids stay ids (nearest)
    out = t.transform(tv_tensors.Mask(mask), _params(t, None))
    assert out.dtype == dtype and out.shape == mask.shape
    assert set(out.unique().tolist()) <= set(mask.unique().tolist())
