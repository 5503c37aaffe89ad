"""MPD and LCM against torchvision's own v2 transform conventions (issue 41): ``check_transform`` and its sample
smoke test re-created from torchvision's test suite (every input kind in dict, list and tuple samples, with
warnings as errors), degenerate boxes kept degenerate, p = 0 the identity, dtypes and devices kept, rotated boxes,
mask ids, and one-line errors for samples that cannot be warped."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from torch.utils._pytree import tree_flatten
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.geometric import LogConformal, MobiusPerspective
from ssl_robustbench.transforms.regions import smallest_rotated_box

SIZE = (17, 11)  # torchvision's DEFAULT_SIZE (height, width)
TRANSFORMS = [MobiusPerspective(p=1.0), MobiusPerspective(p=1.0, view="left", high=0.6, background="padded"),
              LogConformal(p=1.0, low=1.2, high=2.0), LogConformal(p=1.0, zoom=(0.8, 1.2), rotation=0.3)]
IDS = ["mpd", "mpd-left-padded", "lcm-strong", "lcm-zoom-rotation"]


def _boxes(fmt, *, dtype=torch.float32, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = SIZE
    x1, y1 = torch.randint(0, w - 4, (n,), generator=g), torch.randint(0, h - 4, (n,), generator=g)
    bw, bh = torch.randint(2, 5, (n,), generator=g), torch.randint(2, 5, (n,), generator=g)
    xyxy = torch.stack((x1, y1, x1 + bw, y1 + bh), 1).to(dtype)
    box = tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=SIZE)
    if tv_tensors.is_rotated_bounding_format(fmt):
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        angle = torch.rand(n, generator=g) * 60 - 30
        cxcywhr = torch.stack((cx, cy, xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1], angle), 1)
        box = tv_tensors.BoundingBoxes(cxcywhr.to(dtype), format="CXCYWHR", canvas_size=SIZE)
    return TF.convert_bounding_box_format(box, new_format=fmt)


def _degenerate(fmt):
    rows = {"XYXY": [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [2, 0, 1, 1], [0, 2, 1, 1], [2, 2, 1, 1]],
            "XYWH": [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, -1], [0, 0, -1, 1], [0, 0, -1, -1]]}
    rows["CXCYWH"] = rows["XYWH"]
    return tv_tensors.BoundingBoxes(rows[fmt], format=fmt, canvas_size=SIZE)


def _sample(image_or_video):
    """torchvision's ``_make_transform_sample``: one of every input kind on one canvas."""
    masks = torch.zeros(3, *SIZE, dtype=torch.bool)
    masks[:, 4:12, 3:8] = True
    return dict(
        image_or_video=image_or_video,
        image_tv_tensor=tv_tensors.Image(torch.randint(0, 256, (3, *SIZE), dtype=torch.uint8)),
        video_tv_tensor=tv_tensors.Video(torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8)),
        image_pil=PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8)),
        **{f"bounding_boxes_{fmt.name.lower()}": _boxes(fmt) for fmt in tv_tensors.BoundingBoxFormat},
        **{f"bounding_boxes_degenerate_{fmt.lower()}": _degenerate(fmt) for fmt in ("XYXY", "XYWH", "CXCYWH")},
        keypoints=tv_tensors.KeyPoints([[3.0, 4.0], [8.0, 12.0]], canvas_size=SIZE),
        detection_mask=tv_tensors.Mask(masks),
        segmentation_mask=tv_tensors.Mask(torch.randint(0, 5, SIZE, dtype=torch.uint8)),
        int=0, float=0.0, bool=True, none=None, str="str", path=Path.cwd(), object=object(),
        tensor=torch.empty(5), array=np.empty(5),
    )


INPUTS = {"image": lambda: tv_tensors.Image(torch.rand(3, *SIZE)),
          "video": lambda: tv_tensors.Video(torch.rand(2, 3, *SIZE)),
          "pure-tensor": lambda: torch.randint(0, 256, (3, *SIZE), dtype=torch.uint8),
          "pil": lambda: PIL.Image.new("RGB", SIZE[::-1], (10, 200, 30))}


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
@pytest.mark.parametrize("kind", list(INPUTS))
def test_check_transform(t, kind):
    """``check_transform``: picklable, output types and formats kept, and the full sample smoke test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(t))
        image = INPUTS[kind]()
        assert isinstance(t(image), type(image))
        sample = _sample(image)
        for container in (dict, list, tuple):
            inputs = sample if container is dict else container(sample.values())
            flat_in, spec_in = tree_flatten(inputs)
            torch.manual_seed(0)
            flat_out, spec_out = tree_flatten(t(inputs))
            assert spec_out == spec_in
            for out, inp, needs in zip(flat_out, flat_in, v2.Transform()._needs_transform_list(flat_in), strict=True):
                if needs:
                    assert type(out) is type(inp)
                    if isinstance(inp, tv_tensors.BoundingBoxes):
                        assert out.format == inp.format and out.dtype == inp.dtype
                else:
                    assert out is inp
        for name, boxes in sample.items():  # degenerate boxes do not come back valid
            if "degenerate" in name:
                out = t({"boxes": boxes, "labels": torch.arange(len(boxes))})
                assert len(out["boxes"]) == len(boxes)  # kept (they did not vanish through the warp) ...
                assert v2.SanitizeBoundingBoxes()(out)["boxes"].shape == (0, 4)  # ... and still degenerate


def test_p_zero_is_the_identity():
    t = MobiusPerspective(p=0.0, view="left", high=0.6)
    image = tv_tensors.Image(torch.rand(3, *SIZE))
    target = {"boxes": tv_tensors.BoundingBoxes([[1.0, 1.0, 1.5, 1.5], [2.0, 2.0, 9.0, 9.0]], format="XYXY",
                                                canvas_size=SIZE), "labels": torch.tensor([3, 4])}
    out_image, out_target = t(image, target)
    assert out_image is image and out_target["boxes"] is target["boxes"] and out_target["labels"] is target["labels"]


def test_a_tiny_visible_box_is_kept_and_only_vanished_boxes_go():
    t = MobiusPerspective(view="right", high=0.2)
    boxes = tv_tensors.BoundingBoxes([[5.0, 8.0, 5.5, 8.5], [10.0, 0.0, 11.0, 1.0], [4.0, 4.0, 3.0, 3.0]],
                                     format="XYXY", canvas_size=SIZE)
    out = t({"boxes": boxes, "labels": torch.tensor([1, 2, 3])})
    assert out["labels"].tolist() == [1, 3]  # the corner box left the right view; the inverted one stays inverted
    assert (out["boxes"][0, 2:] > out["boxes"][0, :2]).all() and (out["boxes"][1, 2:] <= out["boxes"][1, :2]).all()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float64, torch.float16])
def test_box_and_point_dtypes_are_kept(dtype):
    t = LogConformal()
    torch.manual_seed(1)
    out = t({"boxes": _boxes(tv_tensors.BoundingBoxFormat.XYWH, dtype=dtype),
             "points": tv_tensors.KeyPoints(torch.tensor([[3, 4], [8, 12]], dtype=dtype), canvas_size=SIZE)})
    assert out["boxes"].dtype == dtype and out["points"].dtype == dtype


def test_grids_are_built_on_the_images_device():
    t = LogConformal()
    image = tv_tensors.Image(torch.empty(3, *SIZE, device="meta"))
    out = t(image)
    assert out.device.type == "meta" and out.shape == image.shape


def test_mask_ids_above_2_to_the_24_survive():
    ids = torch.tensor([0, 2**24 + 1, 2**40 + 3, 2**62 + 5])
    mask = ids[torch.randint(0, 4, SIZE, generator=torch.Generator().manual_seed(0))][None]
    out = MobiusPerspective(view="top", high=0.4)(tv_tensors.Mask(mask))
    assert set(out.unique().tolist()) <= set(ids.tolist()) and (out == ids[2]).any()


@pytest.mark.parametrize("sample, message", [
    (lambda: (tv_tensors.Image(torch.rand(3, *SIZE)), tv_tensors.Mask(torch.zeros(1, 20, 11))), "share one canvas"),
    (lambda: (tv_tensors.Image(torch.rand(3, *SIZE)),
              tv_tensors.BoundingBoxes([[1, 1, 4, 4]], format="XYXY", canvas_size=(11, 17))), "share one canvas"),
    (lambda: tv_tensors.Image(torch.rand(*SIZE, 3)), "channels-last"),
    (lambda: tv_tensors.Image(torch.rand(3, 0, 0)), "nothing to warp"),
    (lambda: tv_tensors.BoundingBoxes([[1, float("nan"), 4, 4]], format="XYXY", canvas_size=SIZE), "non-finite"),
])
def test_samples_that_cannot_be_warped_are_one_line_errors(sample, message):
    with pytest.raises(UserError, match=message):
        MobiusPerspective()(sample())


def test_rotated_boxes_are_the_smallest_rotated_box_of_the_warped_region():
    """Against the warped region sampled at 8× through the inverse map: every sample is inside the rotated box,
    and the box's area is within a sliver (perimeter × ⅛ px) of the smallest rotated box of the samples."""
    h, w = 40, 56
    t, params = LogConformal(), {"apply": True, "lam": [0.9, -0.7], "zoom": 1.1, "theta": 0.2}
    boxes = tv_tensors.BoundingBoxes([[28.0, 20.0, 14.0, 8.0, 30.0], [12.0, 10.0, 10.0, 6.0, -50.0]],
                                     format="CXCYWHR", canvas_size=(h, w))
    out = t.transform(boxes, params)
    assert out.format == boxes.format
    quads = TF.convert_bounding_box_format(boxes, new_format="XYXYXYXY").reshape(-1, 4, 2).double().numpy()
    rects = TF.convert_bounding_box_format(out, new_format="XYXYXYXY").reshape(-1, 4, 2).double().numpy()
    xs, ys = np.meshgrid((np.arange(w * 8) + 0.5) / 8, (np.arange(h * 8) + 0.5) / 8)
    lam = complex(*params["lam"])
    s = params["zoom"] * complex(math.cos(params["theta"]), math.sin(params["theta"]))
    z = (np.exp(lam * (((xs - 0.5) / ((w - 1) / 2) - 1) + 1j * ((ys - 0.5) / ((h - 1) / 2) - 1))) - 1) / (lam * s)
    zx, zy = (z.real + 1) * (w - 1) / 2 + 0.5, (z.imag + 1) * (h - 1) / 2 + 0.5
    for quad, rect in zip(quads, rects, strict=True):
        u, v = quad[1] - quad[0], quad[3] - quad[0]
        a, b = (zx - quad[0, 0]) * u[0] + (zy - quad[0, 1]) * u[1], (zx - quad[0, 0]) * v[0] + (zy - quad[0, 1]) * v[1]
        inside = (a >= 0) & (a <= u @ u) & (b >= 0) & (b <= v @ v)
        points = np.stack((xs[inside], ys[inside]), 1)
        ru, rv = rect[1] - rect[0], rect[3] - rect[0]
        pa, pb = (points - rect[0]) @ ru / (ru @ ru), (points - rect[0]) @ rv / (rv @ rv)
        assert (pa >= -1e-3).all() and (pa <= 1 + 1e-3).all() and (pb >= -1e-3).all() and (pb <= 1 + 1e-3).all()
        ref = smallest_rotated_box(points, ru)
        area = lambda r: np.linalg.norm(r[1] - r[0]) * np.linalg.norm(r[3] - r[0])  # noqa: E731
        perimeter = 2 * (np.linalg.norm(ru) + np.linalg.norm(rv))
        assert area(ref) <= area(rect) <= area(ref) + perimeter / 8 + 0.1


def test_smallest_rotated_box_against_a_brute_force_search():
    rng = np.random.default_rng(5)
    for _ in range(10):
        points = rng.normal(size=(30, 2)) * [5, 2] @ np.array([[0.8, 0.6], [-0.6, 0.8]])
        rect = smallest_rotated_box(points, np.array([1.0, 0.0]))
        side = np.linalg.norm(rect[1] - rect[0]) * np.linalg.norm(rect[3] - rect[0])
        brute = min(np.ptp(points @ [math.cos(a), math.sin(a)]) * np.ptp(points @ [-math.sin(a), math.cos(a)])
                    for a in np.linspace(0, math.pi / 2, 9001))
        assert side <= brute + 1e-9 and side == pytest.approx(brute, rel=1e-4)
