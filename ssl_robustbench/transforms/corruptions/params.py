"""Published per-severity constants of the 19 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019).

``imagenet``: the values of Hendrycks' ``make_imagenet_c.py``, the script that made the released ImageNet-C from
224² images (pixelate scales back up with a box filter, frost textures are cropped at their own size, elastic is
a random affine then a displacement field with the script's 244-based constants). At other sizes every length is
scaled by side / 224 (the script only knows 224²; our generalization).
``cifar``: the CIFAR-10-C values of ``make_cifar_c.py`` for 32² images (frost textures shrunk to 0.2×, lengths
relative to the side as there).
``IMAGECORRUPTIONS``: where the ``imagecorruptions`` package (Michaelis et al., 2019) departs from the script on
the ``imagenet`` table: elastic constants with no affine part, frost textures rescaled to 1.1× the image,
pixelate scaled back up with PIL's nearest filter instead of its box filter (the same pixels at 224², not at
every size).
Which table an image size uses: ``table_for`` in ``__init__``; which reference: ``corrupt(reference=...)``.
"""

from __future__ import annotations

_S = 32  # CIFAR's image side: make_cifar_c.py writes elastic constants as multiples of it
_I, _R = 224, 244  # make_imagenet_c.py's image side, and the side its elastic constants were written for

PARAMS: dict[str, dict[str, list]] = {
    "gaussian_noise": {"imagenet": [0.08, 0.12, 0.18, 0.26, 0.38], "cifar": [0.04, 0.06, 0.08, 0.09, 0.10]},
    "shot_noise": {"imagenet": [60, 25, 12, 5, 3], "cifar": [500, 250, 100, 75, 50]},
    "impulse_noise": {"imagenet": [0.03, 0.06, 0.09, 0.17, 0.27], "cifar": [0.01, 0.02, 0.03, 0.05, 0.07]},
    # (radius, alias blur σ)
    "defocus_blur": {"imagenet": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
                     "cifar": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]},
    # (σ, max shift, iterations)
    "glass_blur": {"imagenet": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
                   "cifar": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)]},
    # (radius, σ)
    "motion_blur": {"imagenet": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
                    "cifar": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)]},
    # np.arange(start, stop, step) of zoom factors
    "zoom_blur": {"imagenet": [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)],
                  "cifar": [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)]},
    # (mean, std, zoom, threshold, blur radius, blur σ, blend)
    "snow": {"imagenet": [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                          (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                          (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
             "cifar": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                       (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                       (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)]},
    # (image weight, frost weight, texture scale: 1 = as stored, None = 1.1 × just covering the image)
    "frost": {"imagenet": [(1, 0.4, 1), (0.8, 0.6, 1), (0.7, 0.7, 1), (0.65, 0.7, 1), (0.6, 0.75, 1)],
              "cifar": [(1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2), (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)]},
    # (strength, wibble decay)
    "fog": {"imagenet": [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
            "cifar": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]},
    "brightness": {"imagenet": [0.1, 0.2, 0.3, 0.4, 0.5], "cifar": [0.05, 0.1, 0.15, 0.2, 0.3]},
    "contrast": {"imagenet": [0.4, 0.3, 0.2, 0.1, 0.05], "cifar": [0.75, 0.5, 0.4, 0.3, 0.15]},
    # (α, σ / side, max displacement / side, affine jitter / side)
    "elastic_transform": {
        # make_imagenet_c.py: (244·a, 244·σ, 244·affine) for its 224² images ("244 should have been 224"), U(-1, 1)
        "imagenet": [(_R * 2, _R * 0.7 / _I, 1 / _I, _R * 0.1 / _I), (_R * 2, _R * 0.08 / _I, 1 / _I, _R * 0.2 / _I),
                     (_R * 0.05, _R * 0.01 / _I, 1 / _I, _R * 0.02 / _I),
                     (_R * 0.07, _R * 0.01 / _I, 1 / _I, _R * 0.02 / _I),
                     (_R * 0.12, _R * 0.01 / _I, 1 / _I, _R * 0.02 / _I)],
        "cifar": [(0, 0, 1 / _S, 0.08), (0.05 * _S, 0.2, 1 / _S, 0.07), (0.08 * _S, 0.06, 1 / _S, 0.06),
                  (0.1 * _S, 0.04, 1 / _S, 0.05), (0.1 * _S, 0.03, 1 / _S, 0.03)]},
    # (scale, upsampling filter)
    "pixelate": {"imagenet": [(0.6, "box"), (0.5, "box"), (0.4, "box"), (0.3, "box"), (0.25, "box")],
                 "cifar": [(0.95, "box"), (0.9, "box"), (0.85, "box"), (0.75, "box"), (0.65, "box")]},
    "jpeg_compression": {"imagenet": [25, 18, 15, 10, 7], "cifar": [80, 65, 58, 50, 40]},
    "speckle_noise": {"imagenet": [0.15, 0.2, 0.35, 0.45, 0.6], "cifar": [0.06, 0.1, 0.12, 0.16, 0.2]},
    "gaussian_blur": {"imagenet": [1, 2, 3, 4, 6], "cifar": [0.4, 0.6, 0.7, 0.8, 1]},
    # (mean, std, σ, threshold, intensity or mud σ, mud?)
    "spatter": {"imagenet": [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                             (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)],
                "cifar": [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                          (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)]},
    # (saturation factor, offset)
    "saturate": {"imagenet": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
                 "cifar": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)]},
}

IMAGECORRUPTIONS: dict[str, list] = {
    "elastic_transform": [(250 * 0.05, 0.01, 0.005, 0), (250 * 0.065, 0.01, 0.005, 0), (250 * 0.085, 0.01, 0.005, 0),
                          (250 * 0.1, 0.01, 0.005, 0), (250 * 0.12, 0.01, 0.005, 0)],
    "frost": [(1, 0.4, None), (0.8, 0.6, None), (0.7, 0.7, None), (0.65, 0.7, None), (0.6, 0.75, None)],
    "pixelate": [(0.6, "nearest"), (0.5, "nearest"), (0.4, "nearest"), (0.3, "nearest"), (0.25, "nearest")],
}
