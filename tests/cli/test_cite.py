"""``robustbench cite``: BibTeX for the tool and the papers behind a run's suites, attacks and method."""

from __future__ import annotations

import json
import re

import yaml
from click.testing import CliRunner

from ssl_robustbench.cli import main


def _run_dir(tmp_path, suites, *, method="dino", autoattack="standard"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"suites": suites, "adv": {"autoattack": autoattack}}))
    (run / "model.json").write_text(json.dumps({"card": {"id": "dino-rn50", "method": method,
                                                         "paper": "Caron et al., ICCV 2021"}}))
    return run


def _entries(text):
    keys = re.findall(r"^@\w+\{([^,]+),$", text, flags=re.M)
    assert text.count("{") == text.count("}"), "unbalanced braces"
    assert len(keys) == len(set(keys)), keys
    return keys


def test_cite_a_run_names_its_suites_attacks_and_method(tmp_path):
    result = CliRunner().invoke(main, ["cite", str(_run_dir(tmp_path, ["clean", "c", "adversarial"]))])
    assert result.exit_code == 0, result.output
    assert _entries(result.output) == ["ssl_robustbench", "hendrycks2019benchmarking", "madry2018towards",
                                       "jiang2020robust", "croce2020reliable", "caron2021emerging"]
    assert "% checkpoint dino-rn50: Caron et al., ICCV 2021" in result.output


def test_cite_leaves_out_what_the_run_did_not_use(tmp_path):
    run = _run_dir(tmp_path, ["pd", "adversarial"], method="random", autoattack="none")
    keys = _entries(CliRunner().invoke(main, ["cite", str(run)]).output)
    assert keys == ["ssl_robustbench", "chhipa2024mobius", "madry2018towards", "jiang2020robust"]


def test_cite_without_a_run_lists_every_suite():
    keys = _entries(CliRunner().invoke(main, ["cite"]).output)
    assert {"hendrycks2019benchmarking", "chhipa2024mobius", "li2023imagenete", "croce2020reliable"} <= set(keys)


def test_cite_refuses_what_is_not_a_run(tmp_path):
    result = CliRunner().invoke(main, ["cite", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output
    (tmp_path / "config.yaml").write_text("suites: clean\n")
    result = CliRunner().invoke(main, ["cite", str(tmp_path)])
    assert result.exit_code == 2 and "no list of suites" in result.output
