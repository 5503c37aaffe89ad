"""The documentation site's CLI reference as a reader sees it (issue 43): built with mkdocs (``--strict``), no
``Sentinel.UNSET`` default, every options-table row whole (no ``|`` in a help text splitting it, so each Default
cell is the option's default), examples as code blocks, and option names kept on one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli_page(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra")
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    assert not (site / "hooks").exists()  # the build's hook is not published
    return (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8"), site


def test_no_sentinel_and_every_row_whole(cli_page):
    page, _ = cli_page
    assert "Sentinel" not in page
    for table in re.findall(r"<table>.*?</table>", page, re.S):
        header = re.findall(r"<th>(.*?)</th>", table)
        for row in re.findall(r"<tr>\s*(<td>.*?)</tr>", table, re.S):
            assert len(re.findall(r"<td>", row)) == len(header), row[:200]
    data = re.search(r"<td><code>--data</code></td>\s*<td>[^<]*</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", page, re.S)
    assert data is not None and "embedded" in data.group(2)


def test_examples_are_code_blocks_and_option_names_do_not_wrap(cli_page):
    page, site = cli_page
    assert "<p>Examples:</p>\n<pre><code>robustbench zoo list\nrobustbench eval" in page
    assert not re.search(r"<p>Examples?:\n", page)
    assert "stylesheets/extra.css" in page
    assert "white-space: nowrap" in (site / "stylesheets" / "extra.css").read_text()
