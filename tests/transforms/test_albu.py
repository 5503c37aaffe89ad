"""The Albumentations binding of MPD and LCM (issue 35, item 2): the same pixels, boxes, masks and points as the
torchvision transforms under the same map; vanished boxes dropped with their labels by BboxParams."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

A = pytest.importorskip("albumentations", reason="the optional Albumentations binding (pip install albumentations)")

from ssl_robustbench.transforms.albu import AlbuLogConformal, AlbuMobiusPerspective  # noqa: E402
from ssl_robustbench.transforms.geometric import MobiusPerspective  # noqa: E402

H, W = 64, 80


def _sample(rng):
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[20:40, 30:50] = 1
    boxes = [[30.0, 20.0, 20.0, 20.0], [0.0, 0.0, 4.0, 4.0]]  # coco x, y, w, h; the second leaves a left view
    return image, mask, boxes, [[40.0, 32.0], [10.0, 50.0]]


def test_albumentations_equals_the_torchvision_transform_for_a_fixed_view():
    image, mask, boxes, points = _sample(np.random.default_rng(0))
    pipeline = A.Compose([AlbuMobiusPerspective(p=1.0, view="left", high=0.4)],
                         bbox_params=A.BboxParams(format="coco", label_fields=["labels"]),
                         keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))
    out = pipeline(image=image, mask=mask, bboxes=boxes, labels=[7, 8], keypoints=points)
    tv = MobiusPerspective(view="left", high=0.4)
    params = {"apply": True, **tv.sample()}
    want_image = tv.transform(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), params)
    assert np.array_equal(out["image"], want_image.permute(1, 2, 0).numpy())
    assert np.array_equal(out["mask"], tv.transform(tv_tensors.Mask(torch.from_numpy(mask)[None]), params)[0].numpy())
    want_boxes = tv.transform(tv_tensors.BoundingBoxes(torch.tensor(boxes), format="XYWH", canvas_size=(H, W)),
                              params)
    assert list(out["labels"]) == [7]  # the corner box vanished, and its label with it
    assert np.allclose(out["bboxes"][0], want_boxes[0].numpy(), atol=1e-3)
    want_points = tv.transform(tv_tensors.KeyPoints(torch.tensor(points), canvas_size=(H, W)), params)
    assert np.allclose(out["keypoints"], want_points.numpy(), atol=1e-4)


def test_random_draws_follow_albumentations_seed():
    image, mask, boxes, points = _sample(np.random.default_rng(1))

    def run(seed):
        pipeline = A.Compose([AlbuLogConformal(p=1.0), AlbuMobiusPerspective(p=1.0)], seed=seed,
                             bbox_params=A.BboxParams(format="coco", label_fields=["labels"]))
        return pipeline(image=image, bboxes=boxes[:1], labels=[1])

    first, again, other = run(3), run(3), run(4)
    assert np.array_equal(first["image"], again["image"]) and np.allclose(first["bboxes"], again["bboxes"])
    assert not np.array_equal(first["image"], other["image"])


TRANSFORMS = [lambda p: AlbuMobiusPerspective(p=p, low=0.2, high=0.5, d=0.75, background="padded"),
              lambda p: AlbuMobiusPerspective(p=p, view="top", high=0.4),
              lambda p: AlbuLogConformal(p=p, low=0.5, high=1.5, zoom=(0.9, 1.1), rotation=0.2)]


def _pipeline(transform, seed, replay=False):
    compose = A.ReplayCompose if replay else A.Compose
    pipeline = compose([transform], bbox_params=A.BboxParams(format="coco", label_fields=["labels"]),
                       keypoint_params=A.KeypointParams(format="xyas", remove_invisible=False, angle_in_degrees=True))
    pipeline.set_random_seed(seed)
    return pipeline


def _inputs():
    image, mask, boxes, points = _sample(np.random.default_rng(2))
    return dict(image=image, mask=mask, bboxes=boxes, labels=[1, 2],
                keypoints=[[x, y, 30.0, 2.0] for x, y in points])


def _same(a, b):
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    assert np.allclose(a["bboxes"], b["bboxes"]) and list(a["labels"]) == list(b["labels"])
    assert np.allclose(a["keypoints"], b["keypoints"])


@pytest.mark.parametrize("make", TRANSFORMS)
def test_to_dict_from_dict_round_trip_through_json(make):
    """Albumentations' serialization check: a pipeline saved as JSON and loaded back gives the same output for the
    same seed."""
    import json

    pipeline = _pipeline(make(1.0), seed=7)
    loaded = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline))))
    loaded.set_random_seed(7)
    pipeline.set_random_seed(7)
    _same(pipeline(**_inputs()), loaded(**_inputs()))


@pytest.mark.parametrize("make", TRANSFORMS)
def test_replay_compose_replays_the_recorded_map_from_json(make):
    import json

    first = _pipeline(make(1.0), seed=3, replay=True)(**_inputs())
    record = json.loads(json.dumps(first["replay"]))  # the parameters are plain floats
    _same(first, A.ReplayCompose.replay(record, **_inputs()))


def test_key_point_angle_and_scale_follow_the_map():
    """On a square image (where the pixel map is conformal) each point's angle turns by arg f′ and its scale grows
    by |f′|, checked by moving a short segment through the torchvision transform's point map."""
    size = 64
    pipeline = A.ReplayCompose([AlbuLogConformal(p=1.0, low=1.0, high=1.0)],
                               keypoint_params=A.KeypointParams(format="xyas", remove_invisible=False,
                                                                angle_in_degrees=False))
    pipeline.set_random_seed(5)
    points = [[20.0, 30.0, 0.5, 2.0], [44.0, 12.0, 2.0, 1.0], [32.0, 50.0, 4.0, 3.0]]
    recorded = pipeline(image=np.zeros((size, size, 3), dtype=np.uint8), keypoints=points)
    got = np.asarray(recorded["keypoints"], dtype=np.float64)
    binding = pipeline.transforms[0]
    view_params = recorded["replay"]["transforms"][0]["params"]["map"]
    for (x, y, angle, scale), (gx, gy, gangle, gscale) in zip(points, got, strict=True):
        tip = np.array([[x, y], [x + 1e-4 * math.cos(angle), y + 1e-4 * math.sin(angle)]])
        moved = binding.conformal.move_points(view_params, torch.from_numpy(tip), size, size).numpy()
        step = moved[1] - moved[0]
        assert (gx, gy) == pytest.approx(tuple(moved[0]), abs=1e-3)
        assert math.cos(gangle - math.atan2(step[1], step[0])) == pytest.approx(1.0, abs=1e-6)
        assert gscale == pytest.approx(scale * np.hypot(*step) / 1e-4, rel=1e-3)
        assert abs(gangle - angle) > 1e-3 or abs(gscale - scale) > 1e-3  # the map did turn or scale it
