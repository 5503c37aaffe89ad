"""Every card in model_zoo/ validates; the schema refuses malformed cards with a message naming the field."""

import dataclasses

import pytest
import yaml

from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo import get_card, list_cards, load_model, zoo_dir
from ssl_robustbench.zoo.card import load_card, parse_card

CARDS = list_cards()
VALID = {"id": "x-1", "arch": "tiny_resnet", "method": "simclr", "paper": "p", "license": "MIT",
         "source": {"url": "https://example.org/w.pth", "sha256": "ab" * 32},
         "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "input_size": 224, "crop_pct": 0.875,
         "interpolation": "bilinear"}


def test_zoo_has_the_public_and_bundled_cards():
    ids = {c.id for c in CARDS}
    methods = {c.method for c in CARDS}
    assert {"simclr", "mocov2", "mocov3", "simsiam", "byol", "swav", "dino", "barlowtwins", "vicreg"} <= methods
    assert {"embedded-simclr-tinyresnet", "embedded-random-tinyresnet", "dino-vits16", "dino-rn50"} <= ids


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.id)
def test_every_card_is_complete(card):
    assert card.id == (zoo_dir() / f"{card.id}.yaml").stem
    if card.source.url:
        assert card.source.url.startswith("https://")
        assert card.source.sha256 is None or len(card.source.sha256) == 64
    else:
        assert card.source.sha256 and len(card.source.sha256) == 64, "bundled weights must pin a full sha256"
        assert card.reproduce, "bundled weights must say how to reproduce them"


@pytest.mark.parametrize("card", [c for c in CARDS if c.source.path], ids=lambda c: c.id)
def test_bundled_checkpoints_load_strictly_and_are_small(card):
    path = (card.card_dir / card.source.path)
    assert path.suffix == ".safetensors" and path.stat().st_size <= 5 * 2**20
    loaded = load_model(card)
    assert loaded.report.missing == () and loaded.report.ignored == ()


@pytest.mark.parametrize("change, message", [
    ({"id": "Bad/Id"}, "id 'Bad/Id' must match"),
    ({"method": "nope"}, "method 'nope' is not one of"),
    ({"source": {"url": "https://a/b", "path": "c"}}, "exactly one of path, url and hub"),
    ({"source": {"url": "ftp://a/b"}}, "http"),
    ({"source": {"url": "https://a/b", "sha256": "XYZ"}}, "sha256"),
    ({"source": {"url": "https://a/b", "sha256": "5c8b2c2e"}}, "full 64 lowercase hex digits.*sha256_prefix"),
    ({"source": {"url": "https://a/b", "sha256": "ab" * 32, "sha256_prefix": "abababab"}}, "only where no full"),
    ({"mean": [0.5, 0.5]}, "'mean' must be a list of 3 finite numbers"),
    ({"mean": [0.5, 0.5, float("nan")]}, "'mean' must be a list of 3 finite numbers"),
    ({"input_size": 100000}, "input_size must be an integer in"),
    ({"crop_pct": "abc"}, "crop_pct must be a number"),
    ({"linear_head": {"url": "https://a/h.pth", "prefix": "fc.", "source": "s"}}, "linear_head needs 'top1'"),
    ({"linear_head": {"url": "https://a/h.pth", "prefix": "fc.", "source": "s", "top1": 170}}, "percentage"),
    ({"linear_head": {"path": "h", "url": "https://a", "prefix": "fc.", "source": "s", "top1": 70}}, "exactly one"),
    ({"source": {"url": "https://a/b", "access": "http://form"}}, "source.access must be the https address"),
    ({"source": {"path": "w.safetensors", "access": "https://form"}}, "source.access must be the https address"),
    ({"linear_head": {"url": "https://a/h.pth", "prefix": "", "source": "s", "top1": None, "sha256_prefix": "xyz"}},
     "linear_head.sha256_prefix must be 8"),
    ({"std": [0.5, 0, 0.5]}, "std must be positive"),
    ({"interpolation": "lanczos"}, "interpolation"),
    ({"ignore_keys": ["fc(["]}, "bad regex"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_schema_refuses_malformed_cards(change, message):
    with pytest.raises(UserError, match=message):
        parse_card({**VALID, **change}, where="t.yaml", card_dir=zoo_dir())


@pytest.mark.parametrize("field", ["mean", "std", "input_size", "crop_pct", "interpolation"])
def test_preprocessing_is_never_a_silent_default(field):
    data = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(UserError, match=f"missing field '{field}'"):
        parse_card(data, where="t.yaml", card_dir=zoo_dir())


def test_missing_required_field_and_id_file_mismatch(tmp_path):
    data = dict(VALID)
    del data["license"]
    with pytest.raises(UserError, match="missing field 'license'"):
        parse_card(data, where="t", card_dir=tmp_path)
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(VALID))
    with pytest.raises(UserError, match="must equal the file name"):
        load_card(tmp_path / "other.yaml")
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_card(tmp_path / "bad.yaml")


def test_unknown_id_suggests_close_names():
    with pytest.raises(UserError, match="did you mean dino-vits16"):
        get_card("dino-vit16")


def test_card_preprocess_follows_the_card():
    card = get_card("dino-vits16")
    assert card.preprocess.resize_size == 256 and card.preprocess.interpolation == "bicubic"
    assert dataclasses.replace(card, crop_pct=1.0).preprocess.resize_size == 224


def test_the_light_feature_table_equals_the_builders_signatures():
    """Cards validate without importing torch (``backbone_families``); the table must say what each builder takes."""
    import inspect

    from ssl_robustbench.backbone_families import FEATURE_SETTINGS
    from ssl_robustbench.backbones import BACKBONES

    assert set(FEATURE_SETTINGS) == set(BACKBONES.names())
    for family, keys in FEATURE_SETTINGS.items():
        params = list(inspect.signature(BACKBONES.get(family)).parameters.values())[1:]
        if keys is None:
            assert any(p.kind is p.VAR_KEYWORD for p in params), family
        else:
            assert tuple(p.name for p in params) == keys, family
