"""Counting plain-text pages as CUPS' texttopdf lays them out: 66 lines a page, 80 columns.

Form feeds start a new page; long lines wrap; tabs go to the next multiple of 8. Text sent
to a raw queue is printed by the printer itself, whose layout is close to this default.
"""
from __future__ import annotations

from agent.pagecount.facts import DocumentFacts

LINES_PER_PAGE = 66
COLUMNS = 80
CHUNK = 1 << 20


def _wrapped_lines(line: str) -> int:
    if "\t" in line:
        line = line.expandtabs(8)
    return max(1, -(-len(line) // COLUMNS))


def count(path: str, lines_per_page: int = LINES_PER_PAGE) -> DocumentFacts:
    pages = 0
    lines_on_page = 0
    page_has_content = False
    with open(path, "r", encoding="utf-8", errors="replace", newline="") as handle:
        for raw in handle:
            sections = raw.replace("\r\n", "\n").replace("\r", "\n").split("\f")
            for index, section in enumerate(sections):
                if index > 0:
                    # A form feed ends the page, even an empty one.
                    pages += 1
                    lines_on_page = 0
                    page_has_content = False
                if not section:
                    continue
                page_has_content = True
                text = section[:-1] if section.endswith("\n") else section
                lines_on_page += _wrapped_lines(text) if text or section.endswith("\n") else 0
                while lines_on_page > lines_per_page:
                    pages += 1
                    lines_on_page -= lines_per_page
    if page_has_content and lines_on_page:
        pages += 1
    return DocumentFacts("text", pages, 0, True, "unknown")
