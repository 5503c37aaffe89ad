import pytest

from ssl_robustbench.backbones import BACKBONES
from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.errors import UserError
from ssl_robustbench.methods import METHODS
from ssl_robustbench.registry import Registry
from ssl_robustbench.transforms.augment import AUGMENTATIONS


def test_register_get_and_list():
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"] and "b" in reg and len(reg) == 2


def test_duplicate_name_is_an_error():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(2)


def test_unknown_name_suggests_close_names():
    reg: Registry[int] = Registry("backbone")
    reg.register("tiny_resnet")(1)
    with pytest.raises(UserError, match="did you mean tiny_resnet"):
        reg.get("tiny_resnt")


def test_project_registries_hold_their_builtins():
    assert {"tiny_resnet", "timm", "torchvision"} <= set(BACKBONES.names())
    assert "clean" in BENCHMARKS
    assert "simclr" in METHODS
    assert {"random_resized_crop", "color_jitter", "grayscale"} <= set(AUGMENTATIONS.names())


def test_name_of_is_the_registered_name_of_that_very_object():
    reg: Registry[type] = Registry("method")

    class Base:
        pass

    class Child(Base):
        pass

    reg.register("base")(Base)
    reg.register("child++")(Child)
    assert (reg.name_of(Base), reg.name_of(Child)) == ("base", "child++")
    with pytest.raises(KeyError, match="not a registered method"):
        reg.name_of(int)
