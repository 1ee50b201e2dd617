"""The report's `index.html`: one self-contained page (no scripts, no CDN) with the figures beside it as PNG files."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; } th { background: #f4f4f4; }
.note { color: #555; font-size: 0.9em; } img { max-width: 100%; border: 1px solid #eee; margin: 4px 0; }
.contents { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.9em; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; } .figures img { width: 540px; } .figures.wide img { width: 100%; }
"""


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # PNG file names beside index.html
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (CSV file name, table)
    wide: bool = False  # figures at the page's width (image sheets), not two abreast


def csv_table(table: pd.DataFrame, name: str, out: Path) -> tuple[str, pd.DataFrame]:
    """Write a section's table beside the page; (its file name, the table), as `Section.tables` holds them."""
    table.to_csv(out / name, index=False)
    return name, table


def render_page(title: str, summary: str, sections: list[Section]) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>",
        "<nav class='contents'>",  # a long page: every section a click away
        *(f"<a href='#{_anchor(section.title)}'>{html.escape(section.title)}</a>" for section in sections),
        "</nav>",
    ]
    for section in sections:
        parts.append(f"<h2 id='{_anchor(section.title)}'>{html.escape(section.title)}</h2>")
        parts.extend(f"<p class='note'>{html.escape(note)}</p>" for note in section.notes)
        if section.figures:
            parts.append(f"<div class='figures{' wide' if section.wide else ''}'>")
            parts.extend(f"<img src='{html.escape(name)}' alt='{html.escape(name)}'>" for name in section.figures)
            parts.append("</div>")
        for csv_name, table in section.tables:
            parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0))
            parts.append(f"<p class='note'>as CSV: <a href='{html.escape(csv_name)}'>{html.escape(csv_name)}</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _anchor(title: str) -> str:
    """A section's id in the page: its title in lower case, words joined by hyphens ("compute-cost")."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
