"""One-click reports: download buttons for the HTML and PDF report (and a PNG contact sheet when there are
several photos). Files are made only when a button is clicked (Streamlit calls the data function then)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import streamlit as st

from core.report import Report, contact_sheet_png, to_html, to_pdf


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:80] or "report"


def report_buttons(build: Callable[[], Report], file_stem: str, key: str, photos: int = 1) -> None:
    """Download buttons for the report ``build()`` makes (it runs once, at the first click)."""
    report = functools.cache(build)
    stem = _safe_stem(file_stem)
    columns = st.columns([1, 1, 1, 2] if photos > 1 else [1, 1, 3])
    columns[0].download_button("Report (HTML)", lambda: to_html(report()).encode("utf-8"), f"{stem}_report.html",
                               "text/html", key=f"report_html_{key}", on_click="ignore", icon=":material/description:",
                               help="One self-contained file: overlays, IoU, method comparison, provenance. "
                                    "Opens offline.")
    columns[1].download_button("Report (PDF)", lambda: to_pdf(report()), f"{stem}_report.pdf", "application/pdf",
                               key=f"report_pdf_{key}", on_click="ignore", icon=":material/picture_as_pdf:")
    if photos > 1:
        columns[2].download_button("Contact sheet (PNG)", lambda: contact_sheet_png(report()),
                                   f"{stem}_contact_sheet.png", "image/png", key=f"report_png_{key}",
                                   on_click="ignore", icon=":material/grid_view:",
                                   help="Every photo's overlays on one 1920×1080 slide.")
