"""The README renders as its author meant: every table row is a row of its table (checked with markdown-it-py)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_pipe_line_of_the_readme_renders_as_a_table_row_with_all_its_cells() -> None:
    """Regression: two rows rendered as paragraphs (a blank line, an unescaped pipe)."""
    text = README.read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    covered: set[int] = set()
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            assert tok.map is not None
            covered.update(range(*tok.map))
        if tok.type == "tr_open":
            cells, j = 0, i + 1
            while tokens[j].type != "tr_close":
                cells += tokens[j].type in ("th_open", "td_open")
                j += 1
            header = next(t for t in reversed(tokens[:i]) if t.type == "table_open")
            width = (
                sum(1 for t in tokens[tokens.index(header) : i + 1] if t.type == "th_open") or cells
            )
            assert cells == width, f"README line {tok.map[0] + 1 if tok.map else '?'}"
    in_code = False
    for n, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            in_code = not in_code
        if line.startswith("|") and not in_code:
            assert n in covered, f"README line {n + 1} is not part of a table: {line[:60]}"


def test_readme_documents_every_command() -> None:
    from monitor.cli.main import build_parser

    parser, _ = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = README.read_text(encoding="utf-8")
    missing = [
        name
        for name in sub.choices  # type: ignore[union-attr]
        if not re.search(rf"bearwatch {re.escape(name)}(?![\w-])", text)
    ]
    assert not missing, f"commands without a README line: {missing}"
