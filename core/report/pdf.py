"""A report as a PDF (fpdf2: pure Python, no system libraries): a first page with the method comparison,
any evaluation tables and the provenance, then the photos with every method's overlay (a photo starts a
new page when its first row of overlays would not fit). The content is the HTML's, from the same :class:`~core.report.model.Report`.
"""

from __future__ import annotations

import io

from fpdf import FPDF
from fpdf.fonts import FontFace

from core.report.images import font_file, jpeg_bytes
from core.report.model import MethodResult, PhotoReport, Report, Table, comparison_table

__all__ = ["to_pdf"]

_FONT = "DejaVu"
_MARGIN = 14.0  # mm
_COLUMNS = 2
_GAP = 6.0
_CAPTION = 10.0  # mm under each overlay
_MAX_IMAGE_HEIGHT = 110.0  # mm
_HEADING = 24.0  # mm of a photo's title and prediction lines
_HEADER_FILL = (243, 245, 247)
_MUTED = (87, 96, 106)
_RULE = (190, 196, 204)


class _ReportPDF(FPDF):
    def __init__(self, report: Report):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report = report
        self.add_font(_FONT, "", str(font_file()))
        self.add_font(_FONT, "B", str(font_file(bold=True)))
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, margin=_MARGIN + 4)
        self.set_title(report.title)
        self.set_creator("CAM Explorer")
        self.set_font(_FONT, size=10)

    def footer(self):
        self.set_y(-_MARGIN)
        self.set_font(_FONT, size=7.5)
        self.set_text_color(*_MUTED)
        self.cell(0, 4, f"{self.report.title} · {self.report.created} · page {self.page_no()}/{{nb}}",
                  align="C")
        self.set_text_color(0, 0, 0)

    def heading(self, text: str, size: float = 13) -> None:
        self.set_font(_FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)
        self.set_font(_FONT, size=10)

    def note(self, text: str, size: float = 8.5) -> None:
        self.set_font(_FONT, size=size)
        self.set_text_color(*_MUTED)
        self.multi_cell(0, size * 0.45, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.set_font(_FONT, size=10)

    def table_of(self, table: Table, size: float = 8, col_widths=None, key_value: bool = False) -> None:
        """``key_value``: no header row, the first column in bold (label → value)."""
        self.set_font(_FONT, size=size)
        self.set_draw_color(*_RULE)
        self.set_line_width(0.2)
        heading = FontFace(emphasis="BOLD", fill_color=_HEADER_FILL)
        with self.table(col_widths=col_widths, line_height=size * 0.5, headings_style=heading,
                        first_row_as_headings=not key_value, text_align="LEFT", padding=1,
                        width=self.epw) as grid:
            for values in (table.rows if key_value else (table.columns, *table.rows)):
                row = grid.row()
                for column, value in enumerate(values):
                    row.cell(value, style=heading if key_value and column == 0 else None)
        if table.note:
            self.ln(1)
            self.note(table.note)
        self.ln(4)
        self.set_font(_FONT, size=10)


def _summary_page(pdf: _ReportPDF, report: Report) -> None:
    pdf.add_page()
    pdf.heading(report.title, 18)
    pdf.note(f"{report.created} · {report.provenance.get('Model') or ''} · {len(report.photos)} photo(s)", 9.5)
    pdf.ln(4)
    if report.comparison:
        pdf.heading("Method comparison")
        table = comparison_table(report.comparison)
        pdf.table_of(table, col_widths=_widths(table))
    for table in report.tables:
        pdf.heading(table.title)
        pdf.table_of(table, size=7, col_widths=_widths(table))
    pdf.heading("Provenance")
    pdf.table_of(Table("Provenance", ("", ""), report.provenance.items), col_widths=(1, 4), key_value=True)
    if report.skipped:
        pdf.heading("Skipped photos")
        for name, error in report.skipped:
            pdf.multi_cell(0, 4.5, f"{name}: {error}", new_x="LMARGIN", new_y="NEXT")


def _widths(table: Table) -> tuple[float, ...]:
    """Columns as wide as their longest text (plus padding), so headings such as "MaxBoxAcc" do not break."""
    return tuple(max([len(column[0]) * 1.25] + [len(v) for v in column[1:]]) + 2.0
                 for column in zip(table.columns, *table.rows))


def _box_text(box) -> str:
    return "no box" if box is None else "box (" + ", ".join(f"{v:.0f}" for v in box) + ")"


def _caption(result: MethodResult) -> tuple[str, str]:
    tau = f"τ {result.threshold:.2f}" + ("" if result.calibrated else " (default)")
    iou = "" if result.iou is None else f" · IoU {result.iou:.3f}"
    second = f"{_box_text(result.box)}, {result.regions} region(s)" + (f" · {result.status}" if result.status else "")
    return f"{result.label} · {result.layer} · {tau}{iou}", second


def _photo_section(pdf: _ReportPDF, index: int, photo: PhotoReport, first: bool) -> None:
    """The photo's heading and overlays, two per row; it starts a page unless all of it fits below the
    previous photo (a photo longer than a page starts a page and runs on)."""
    cell = (pdf.epw - _GAP * (_COLUMNS - 1)) / _COLUMNS
    height = min(cell * photo.height / photo.width, _MAX_IMAGE_HEIGHT)  # tall photos: narrower, not longer
    rows = -(-len(photo.methods) // _COLUMNS)
    needed = _HEADING + rows * (height + _CAPTION + 2)
    if first or pdf.get_y() + 6 + needed > pdf.h - _MARGIN - 4:
        pdf.add_page()
    else:
        pdf.ln(6)
    pdf.heading(f"{index}. {photo.name}", 13)
    truth = "no ground truth" if photo.truth is None else f"ground truth {_box_text(photo.truth)[4:]}"
    seconds = "" if photo.seconds is None else f" · network {photo.seconds * 1000:.0f} ms"
    pdf.multi_cell(0, 5, f"Prediction: {photo.predicted} ({photo.score:.1%}) · explaining: {photo.target}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.note(f"{photo.width}×{photo.height} px · {truth}{seconds} · red: predicted box, green: ground truth", 9)
    pdf.ln(3)
    width = height * photo.width / photo.height
    bottom = pdf.h - _MARGIN - 4
    for start in range(0, len(photo.methods), _COLUMNS):
        if pdf.get_y() + height + _CAPTION > bottom:
            pdf.add_page()
        top = pdf.get_y()
        for column, result in enumerate(photo.methods[start:start + _COLUMNS]):
            x = pdf.l_margin + column * (cell + _GAP)
            pdf.image(io.BytesIO(jpeg_bytes(result.overlay)), x=x + (cell - width) / 2, y=top, w=width, h=height)
            title, detail = _caption(result)
            pdf.set_xy(x, top + height + 1)
            pdf.set_font(_FONT, "B", 8.5)
            pdf.cell(cell, 4, title)
            pdf.set_xy(x, top + height + 5)
            pdf.set_font(_FONT, size=7.5)
            pdf.set_text_color(*_MUTED)
            pdf.cell(cell, 4, detail)
            pdf.set_text_color(0, 0, 0)
        pdf.set_xy(pdf.l_margin, top + height + _CAPTION + 2)


def to_pdf(report: Report) -> bytes:
    """The whole report as PDF bytes."""
    pdf = _ReportPDF(report)
    _summary_page(pdf, report)
    for index, photo in enumerate(report.photos, 1):
        _photo_section(pdf, index, photo, first=index == 1)
    return bytes(pdf.output())
