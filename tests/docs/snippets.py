"""Fenced shell and Python snippets of a Markdown file, and a script that runs them in order.

A snippet is a fenced block in ``bash``/``sh``/``shell`` or ``python``. The HTML comment on the
line before it may mark it as not run offline: ``<!-- needs-keys -->`` (it calls a real
provider), ``<!-- not-run: why -->`` (installs, a fragment with ``...``, a long benchmark).
Every other snippet of a file runs, in order, as one bash script (``set -e``), Python ones
through ``python - <<'EOF'`` (a snippet defining ``def test_...`` is written to a file and
run with pytest, the way docs/testing.md means it), so a proxy started in the background by
one snippet serves the next ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Snippet", "script_of", "snippets_of"]

_FENCE = re.compile(r"^```(\w+)\s*$")
_MARK = re.compile(r"^<!--\s*(needs-keys|not-run)\b(.*?)-->\s*$")
_SHELLS = {"bash", "sh", "shell"}


@dataclass(frozen=True)
class Snippet:
    source: str
    line: int
    lang: str
    text: str
    skip: str | None


def snippets_of(path: Path) -> list[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        lang, start = match.group(1), i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        if lang not in _SHELLS and lang != "python":
            continue
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARK.match(before.strip())
        skip = (mark.group(1) + mark.group(2)).strip() if mark else None
        out.append(Snippet(path.name, start + 1, lang, "\n".join(body) + "\n", skip))
    return out


def script_of(snippets: list[Snippet]) -> str:
    parts = ["set -euo pipefail"]
    for s in snippets:
        if s.skip:
            continue
        parts.append(f"echo '>>> {s.source}:{s.line}' >&2")
        if s.lang == "python" and "def test_" in s.text:  # a pytest example: run it with pytest
            name = f"test_snippet_{s.source.replace('.', '_')}_{s.line}.py"
            parts.append(
                f"cat > {name} <<'MM_SNIPPET_EOF'\n{s.text}MM_SNIPPET_EOF\n"
                f"python -m pytest -q -p no:cacheprovider {name}"
            )
        elif s.lang == "python":
            parts.append(f"python - <<'MM_SNIPPET_EOF'\n{s.text}MM_SNIPPET_EOF")
        else:
            parts.append(s.text)
    parts.append("jobs -p | xargs -r kill 2>/dev/null || true")
    return "\n".join(parts) + "\n"
