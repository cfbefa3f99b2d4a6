"""Reports to hand out: the photos' overlays, boxes and IoU, the method comparison, an evaluation summary
and the provenance, as a self-contained HTML file, a PDF and a slide-ready PNG contact sheet.

    from core.report import build_report, to_html, to_pdf, contact_sheet_png
    report = build_report(name, photo, raw, display, bundle, calibrated, target_label=target.label)
    html, pdf, png = to_html(report).encode(), to_pdf(report), contact_sheet_png(report)

Modules: ``model`` (what a report holds), ``build`` (from explanations, bundles and pipelines), ``html``,
``pdf``, ``sheet`` (the writers), ``images`` (embedded images, fonts), ``cli`` (``python -m core.report``).
"""

from core.report.build import build_report, evaluation_table, make_report, photo_report, provenance
from core.report.html import to_html
from core.report.model import ComparisonRow, MethodResult, PhotoReport, Provenance, Report, Table
from core.report.pdf import to_pdf
from core.report.sheet import SHEET_SIZE, contact_sheet, contact_sheet_png, sheet_layout

__all__ = [
    "build_report", "make_report", "photo_report", "provenance", "evaluation_table",
    "to_html", "to_pdf", "contact_sheet", "contact_sheet_png", "sheet_layout", "SHEET_SIZE",
    "Report", "PhotoReport", "MethodResult", "ComparisonRow", "Provenance", "Table",
]
