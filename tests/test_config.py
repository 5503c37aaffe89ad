import pytest

from ssl_robustbench.benchmarks.base import protocol_hash
from ssl_robustbench.config import build, config_hash, parse_overrides, resolve, to_dict
from ssl_robustbench.errors import UserError
from ssl_robustbench.eval_config import EvalConfig


def test_precedence_file_then_options_then_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: from-file\nprobe: {weight_decay: 0.5}\nrun: {batch_size: 8}\n")
    cfg = resolve(EvalConfig, config_file=f, options={"run": {"batch_size": 16}},
                  overrides=["probe.weight_decay=1e-3", "suites=[clean]"])
    assert cfg.model == "from-file"
    assert cfg.run.batch_size == 16
    assert cfg.probe.weight_decay == pytest.approx(1e-3)  # YAML reads 1e-3 as a string; coerced to float
    assert cfg.suites == ("clean",)


def test_unknown_key_and_bad_type_are_named():
    with pytest.raises(UserError, match="unknown config key 'probe.learning_rate'"):
        build(EvalConfig, {"probe": {"learning_rate": 1}})
    with pytest.raises(UserError, match="'run.batch_size' must be int"):
        build(EvalConfig, {"run": {"batch_size": "many"}})
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["novalue"])


def test_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        resolve(EvalConfig, config_file=tmp_path / "nope.yaml", options={}, overrides=[])


def test_hash_ignores_where_the_run_executes_but_not_the_protocol():
    a = EvalConfig()
    b = build(EvalConfig, {"run": {"device": "cpu", "batch_size": 7, "out": "elsewhere"}})
    c = build(EvalConfig, {"probe": {"weight_decay": 0.1}})
    d = build(EvalConfig, {"run": {"seed": 3}})
    assert config_hash(a) == config_hash(b)
    assert len({config_hash(a), config_hash(c), config_hash(d)}) == 3
    assert to_dict(a)["suites"] == ["clean"]


def test_protocol_hash_is_shared_by_models_under_one_protocol():
    def proto(cfg, suite="clean", n=2000):
        return protocol_hash(cfg, suite, eval_data={"n": n}, train_data={"n": 5000})

    a, b = build(EvalConfig, {"model": "x"}), build(EvalConfig, {"model": "y", "ignore_keys": ["fc"]})
    assert proto(a) == proto(b) and config_hash(a) != config_hash(b)
    assert proto(a) != proto(a, n=10)  # other evaluation data
    root = build(EvalConfig, {"model": "x", "data": {"name": "imagenet", "root": "/mnt/ssd/imagenet"},
                              "c": {"root": "/data/c"}})
    moved = build(EvalConfig, {"model": "x", "data": {"name": "imagenet", "root": "/x"}, "c": {"root": "/y"}})
    assert proto(root) == proto(moved) and config_hash(root) == config_hash(moved)
    tree = build(EvalConfig, {"model": "x", "c": {"root": "/data/c"}})
    assert proto(a, "c") != proto(tree, "c")  # a released tree is another protocol than generated corruptions
    assert proto(build(EvalConfig, {"c": {"severities": [3]}})) == proto(a)  # another suite's section: no effect
    released = build(EvalConfig, {"head": "released", "probe": {"weight_decay": 0.5}})
    assert proto(released) == proto(build(EvalConfig, {"head": "released"})) != proto(a)


def test_fractions_are_accepted_where_a_float_is_expected():
    from ssl_robustbench.eval_config import EvalConfig

    cfg = resolve(EvalConfig, config_file=None, options={}, overrides=["adv.eps=8/255", "adv.pgd_step_size=2 / 255"])
    assert cfg.adv.eps == 8 / 255 and cfg.adv.pgd_step_size == 2 / 255
    with pytest.raises(UserError, match="divides by zero"):
        resolve(EvalConfig, config_file=None, options={}, overrides=["adv.eps=8/0"])
    with pytest.raises(UserError, match="'run.batch_size' must be int"):
        resolve(EvalConfig, config_file=None, options={}, overrides=["run.batch_size=8/2"])  # ints stay ints
