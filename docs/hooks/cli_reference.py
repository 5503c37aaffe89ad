"""mkdocs hook for the generated CLI reference (``mkdocs-click``): Click's "no default" sentinel shown as an empty
cell instead of ``Sentinel.UNSET``, and each command's ``Example(s):`` block kept as the code block it is in the
terminal (Click's ``\\b`` paragraphs; mkdocs-click renders them as one run-together paragraph)."""

from __future__ import annotations

import html
import re

_EXAMPLES = re.compile(r"<p>(Examples?:)\n(.*?)</p>", re.S)


def on_page_content(content: str, page, config, files) -> str:  # noqa: ARG001 - mkdocs' hook signature
    if page.file.src_uri != "reference/cli.md":
        return content
    content = content.replace("<td><code>Sentinel.UNSET</code></td>", "<td></td>")

    def block(match: re.Match) -> str:
        lines = [line[2:] if line.startswith("  ") else line for line in match.group(2).split("\n")]
        code = html.escape(html.unescape("\n".join(lines)))
        return f"<p>{match.group(1)}</p>\n<pre><code>{code}</code></pre>"

    return _EXAMPLES.sub(block, content)
