"""A report as one self-contained HTML file: images as data URIs, CSS inline, no script, no font or URL
fetched (a Content-Security-Policy forbids it), so it opens offline and survives being mailed. Every text
comes from users or models and is escaped.
"""

from __future__ import annotations

from html import escape

from core.report.images import data_uri
from core.report.model import MethodResult, PhotoReport, Report, Table, comparison_table

__all__ = ["to_html"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body { font: 15px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1d232a;
       max-width: 1200px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px;
     border-bottom: 2px solid #d8dee4; padding-bottom: 4px; overflow-wrap: anywhere; }
.meta, .note, figcaption { color: #57606a; } .note { font-size: 13px; margin: 4px 0 0; }
table { border-collapse: collapse; font-size: 13.5px; margin: 4px 0; }
th, td { border: 1px solid #d8dee4; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 150px; } table.kv td { overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px; }
figure { margin: 0; border: 1px solid #d8dee4; border-radius: 6px; padding: 8px; break-inside: avoid; }
figure img { width: 100%; height: auto; display: block; border-radius: 3px; }
figcaption { font-size: 13px; margin-top: 6px; } figcaption b { color: #1d232a; }
.iou { font-weight: bold; color: #0b6e2f; } .warn { color: #9a3412; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px -1px 10px;
               print-color-adjust: exact; -webkit-print-color-adjust: exact; }
h2 { break-after: avoid; } tr { break-inside: avoid; }
@media print { body { margin: 0; max-width: none; font-size: 12px; } table { font-size: 10.5px; width: 100%; }
               th, td { padding: 2px 5px; } section.photo { break-before: page; }
               .grid { grid-template-columns: repeat(2, 1fr); } }
@page { size: A4; margin: 14mm; }
"""


def _table(table: Table, numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(v)}</td>' if i >= numeric_from else f"<td>{escape(v)}</td>"
                         for i, v in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"


def _box_text(box) -> str:
    return "no box" if box is None else "box (" + ", ".join(f"{v:.0f}" for v in box) + ")"


def _figure(photo: PhotoReport, result: MethodResult) -> str:
    iou = "" if result.iou is None else f' · <span class="iou">IoU {result.iou:.3f}</span>'
    tau = f"τ {result.threshold:.2f}" + ("" if result.calibrated else " (default)")
    status = f'<br><span class="warn">{escape(result.status)}</span>' if result.status else ""
    alt = f"{result.label} overlay of {photo.name}"
    return (f'<figure data-method="{escape(result.method)}" data-iou="{"" if result.iou is None else result.iou}">'
            f'<img src="{data_uri(result.overlay)}" alt="{escape(alt)}">'
            f"<figcaption><b>{escape(result.label)}</b> · {escape(result.layer)} · {tau}{iou}<br>"
            f"{_box_text(result.box)}, {result.regions} region(s){status}</figcaption></figure>")


def _photo(index: int, photo: PhotoReport) -> str:
    top = ", ".join(f"{escape(name)} {score:.0%}" for name, score in photo.top5[1:4])
    truth = "no ground truth" if photo.truth is None else f"ground truth {_box_text(photo.truth)[4:]}"
    seconds = "" if photo.seconds is None else f" · network {photo.seconds * 1000:.0f} ms"
    figures = "".join(_figure(photo, r) for r in photo.methods)
    return (f'<section class="photo" id="photo-{index}"><h2>{index}. {escape(photo.name)}</h2>'
            f"<p><b>Prediction:</b> {escape(photo.predicted)} ({photo.score:.1%})"
            + (f" · next: {top}" if top else "")
            + f"<br><b>Explaining:</b> {escape(photo.target)} · {photo.width}×{photo.height} px · {truth}{seconds}"
            f'<br><span class="legend">Boxes:<span style="background:#ff2828"></span>predicted'
            f'<span style="background:#28dc3c"></span>ground truth</span></p>'
            f'<div class="grid">{figures}</div></section>')


def to_html(report: Report) -> str:
    """The whole report as one HTML document (a str; encode as UTF-8 to save)."""
    provenance = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in report.provenance.items)
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(report.title)}</h1><p class=\"meta\">{escape(report.created)} · "
        f"{escape(report.provenance.get('Model') or '')} · {len(report.photos)} photo(s)</p></header>",
    ]
    if report.comparison:
        parts.append(f'<section id="comparison"><h2>Method comparison</h2>'
                     f"{_table(comparison_table(report.comparison), numeric_from=2)}</section>")
    for table in report.tables:
        parts.append(f'<section class="table"><h2>{escape(table.title)}</h2>{_table(table)}</section>')
    parts.append(f'<section id="provenance"><h2>Provenance</h2><table class="kv">{provenance}</table></section>')
    parts.extend(_photo(i, photo) for i, photo in enumerate(report.photos, 1))
    if report.skipped:
        items = "".join(f"<li><b>{escape(name)}</b>: {escape(error)}</li>" for name, error in report.skipped)
        parts.append(f'<section id="skipped"><h2>Skipped photos</h2><ul>{items}</ul></section>')
    parts.append("</body></html>")
    return "\n".join(parts)
