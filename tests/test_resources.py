"""Project data (zoo, recipes, result store) is found in a checkout and, after ``pip install``, in the wheel's
``share/ssl-robustbench`` — and the wheel lists every file the checkout has."""

import configparser
import glob
import sys
from pathlib import Path

from ssl_robustbench import resources
from ssl_robustbench.config import load_yaml

REPO = Path(__file__).resolve().parents[1]


def test_checkout_folders_are_found_first():
    assert resources.project_dir("model_zoo") == REPO / "model_zoo"


def test_installed_layout_is_found_without_a_checkout(tmp_path, monkeypatch):
    site = tmp_path / "venv" / "lib" / "site-packages" / "ssl_robustbench"
    site.mkdir(parents=True)
    share = tmp_path / "venv" / "share" / "ssl-robustbench"
    (share / "benchmarks" / "eval").mkdir(parents=True)
    (share / "benchmarks" / "eval" / "x.yaml").write_text("suites: [clean]\n")
    monkeypatch.setattr(resources, "__file__", str(site / "resources.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.chdir(tmp_path)
    assert resources.project_dir("benchmarks") == share / "benchmarks"
    assert load_yaml(Path("benchmarks/eval/x.yaml")) == {"suites": ["clean"]}  # the README's relative path works


def test_wheel_data_files_cover_every_data_file_of_the_checkout():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    shipped = set()
    for patterns in cfg["options.data_files"].values():
        for pattern in patterns.replace("\n", ",").split(","):
            if pattern.strip():
                shipped |= {Path(p) for p in glob.glob(str(REPO / pattern.strip()))}
    wanted = {p for folder in ("model_zoo", "benchmarks", "results") for p in (REPO / folder).rglob("*")
              if p.is_file() and p.suffix != ".sh"  # scripts that rebuild the store are not package data
              and not any(part.startswith(".") for part in p.relative_to(REPO).parts)}  # caches, locks
    assert wanted - shipped == set()
