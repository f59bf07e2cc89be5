"""A report as JSON, CSV, XLSX, PDF or an HTML page with charts, and its charts as PNG.

Charts are drawn on the server (matplotlib's Agg canvas, no display, one Figure per chart, so
threads never share pyplot's state): the HTML page, the PDF and the e-mailed reports all carry
the same pictures. Files are produced as iterators of bytes so that the web process streams
them: the job list (`jobs`) is read from a streaming cursor chunk by chunk; an XLSX is written
by xlsxwriter in constant-memory mode to a temporary file, then streamed from it.

Spreadsheet cells that begin with = + - @ (or a tab or carriage return) would be taken as a
formula by Excel or LibreOffice (CSV injection): every such text cell is written with a
leading apostrophe, in CSV and XLSX alike. Numbers are written as numbers.
"""
from __future__ import annotations

import base64
import csv
import io
import math
import tempfile
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

from functools import lru_cache
from types import SimpleNamespace

from markupsafe import Markup

import jinja2
import pandas as pd  # noqa: E402
import xlsxwriter  # noqa: E402

from domain.units import format_money, iso  # noqa: E402
from projections.reports import MONEY_COLUMNS, TIME_COLUMNS, Chart, Report, Section  # noqa: E402


@lru_cache(maxsize=1)
def _mpl() -> SimpleNamespace:
    """matplotlib, imported the first time a chart is drawn: it costs ~0.3 s, and every process
    that builds the runtime (each CLI command, the agent's tools) imports this module."""
    import matplotlib

    matplotlib.use("Agg")  # no display, ever: charts are files
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    return SimpleNamespace(Figure=Figure, FigureCanvasAgg=FigureCanvasAgg, PdfPages=PdfPages)

FORMATS = ("json", "csv", "xlsx", "pdf", "html")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PDF_ROWS_A_PAGE = 32
CHUNK_BYTES = 64 * 1024


def safe_cell(value: str) -> str:
    """A text cell a spreadsheet will never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def cell_value(column: str, value: Any) -> Any:
    """A cell as JSON shows it: money as a decimal string, times as ISO 8601, numpy scalars
    as Python ones, a missing value as None."""
    if _missing(value):
        return None
    if column in MONEY_COLUMNS or column.endswith("cost_saved"):
        return format_money(int(value))
    if column in TIME_COLUMNS:
        return iso(int(value))
    if hasattr(value, "item"):
        return value.item()
    return value


def section_json(s: Section) -> dict[str, Any]:
    columns = [str(c) for c in s.frame.columns]
    rows = [{c: cell_value(c, v) for c, v in zip(columns, r)} for r in s.frame.itertuples(index=False, name=None)]
    out: dict[str, Any] = {"name": s.name, "title": s.title, "columns": columns, "rows": rows}
    if s.totals is not None:
        out["totals"] = {k: cell_value(k, v) for k, v in s.totals.items()}
    if s.note:
        out["note"] = s.note
    return out


def report_json(r: Report) -> dict[str, Any]:
    p = r.parameters
    return {
        "report": r.name, "title": r.title,
        "period": {"from": iso(p.since) or "1970-01-01T00:00:00+00:00", "to": iso(p.until), "timezone": p.timezone},
        "parameters": p.given,
        "sections": [section_json(s) for s in r.sections],
        "notes": r.notes,
        "factors": r.factors,
        "charts": [{"name": c.name, "title": c.title} for c in r.charts],
        "definitions": DEFINITIONS,
    }


DEFINITIONS = {
    "impressions": "printed page sides of all copies (impressions_per_copy × copies)",
    "impressions_per_copy": "printed page sides of one copy, after N-up and page ranges",
    "colour_impressions": "impressions with colour, all copies",
    "sheets": "sheets of paper, all copies",
    "cost": "charged when the job was tracked; denied jobs carry none",
}


# --- charts ---------------------------------------------------------------------------------

def chart_png(r: Report, chart: Chart, *, dpi: int = 100) -> bytes:
    fig = _chart_figure(r, chart)
    buf = io.BytesIO()
    fig.set_dpi(dpi)
    _mpl().FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def _chart_figure(r: Report, chart: Chart) -> Any:
    frame = r.section(chart.section).frame
    fig = _mpl().Figure(figsize=(8, 4.2))
    ax = fig.add_subplot()
    ax.set_title(chart.title)
    if frame.empty:
        ax.text(0.5, 0.5, "no jobs in this period", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    data = frame.head(20) if chart.kind == "barh" else frame
    labels = [str(v)[:32] for v in data[chart.x]]
    values = [[_number(chart_col, v) for v in data[chart_col]] for chart_col in chart.y]
    if not any(v for vals in values for v in vals):
        ax.text(0.5, 0.5, "nothing to show in this period", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    if chart.kind == "pie":
        ax.pie(values[0], labels=labels, autopct="%1.0f%%", colors=["#7f8c8d", "#e67e22"][: len(labels)])
    elif chart.kind == "barh":
        ax.barh(labels[::-1], values[0][::-1], color="#2c7fb8")
        ax.set_xlabel(_label(chart.y[0]))
    elif chart.kind == "line":
        for col, vals in zip(chart.y, values):
            ax.plot(labels, vals, marker="o", label=_label(col))
        ax.legend()
        ax.tick_params(axis="x", rotation=45)
    else:  # stacked bars
        bottom = [0.0] * len(labels)
        for col, vals, colour in zip(chart.y, values, ("#7f8c8d", "#e67e22", "#2c7fb8")):
            ax.bar(labels, vals, bottom=bottom, label=_label(col), color=colour)
            bottom = [b + v for b, v in zip(bottom, vals)]
        if len(chart.y) > 1:
            ax.legend()
        ax.tick_params(axis="x", rotation=45 if len(labels) > 8 else 0)
    fig.tight_layout()
    return fig


def _number(column: str, value: Any) -> float:
    if _missing(value):
        return 0.0
    return int(value) / 10_000 if column in MONEY_COLUMNS or column.endswith("cost_saved") else float(value)


def _label(column: str) -> str:
    return column.replace("_", " ")


# --- CSV ------------------------------------------------------------------------------------

def _csv_cell(column: str, value: Any) -> Any:
    v = cell_value(column, value)
    if v is None:
        return ""
    if isinstance(v, str) and column not in MONEY_COLUMNS and not column.endswith("cost_saved"):
        return safe_cell(v)
    return v


def _csv_lines(rows: Iterable[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _money_text(values: pd.Series) -> pd.Series:
    missing = values.isna()
    units = values.fillna(0).astype("int64")
    text = (units // 10_000).astype(str) + "." + (units % 10_000).astype(str).str.zfill(4)
    return text.where(~missing, "")


def csv_chunk(frame: pd.DataFrame) -> bytes:
    """Rows of a frame as CSV, column by column (vectorised: ~20 times the per-cell path, for
    the job list's millions of rows); the same cells as `_csv_cell` but times always show
    their microseconds."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if c in MONEY_COLUMNS or c.endswith("cost_saved"):
            out[c] = _money_text(col)
        elif c in TIME_COLUMNS:
            out[c] = pd.to_datetime(col, unit="us", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        elif col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            text = col.fillna("").astype(str)
            out[c] = text.where(~text.str[:1].isin(FORMULA_STARTS), "'" + text)
        else:
            out[c] = col
    return pd.DataFrame(out).to_csv(header=False, index=False, lineterminator="\r\n").encode("utf-8")


def csv_stream(r: Report, job_chunks: Iterator[pd.DataFrame] | None = None) -> Iterator[bytes]:
    """The report as CSV: one block per section (its title, header, rows, a totals row), and,
    for the job list, every job of the period read chunk by chunk."""
    yield b"\xef\xbb\xbf"  # a BOM: Excel then reads the file as UTF-8
    p = r.parameters
    yield _csv_lines([[safe_cell(r.title)], ["from", iso(p.since) or "1970-01-01T00:00:00+00:00", "to", iso(p.until),
                                             "timezone", p.timezone]])
    for s in r.sections:
        if job_chunks is not None and s.name == "jobs":
            columns = list(s.frame.columns)
            yield _csv_lines([[], [safe_cell(s.title)], columns])
            for chunk in job_chunks:
                yield csv_chunk(chunk)
            continue
        columns = [str(c) for c in s.frame.columns]
        lines: list[list[Any]] = [[], [safe_cell(s.title)], [safe_cell(c) for c in columns]]
        lines += [[_csv_cell(c, v) for c, v in zip(columns, row)] for row in s.frame.itertuples(index=False, name=None)]
        if s.totals is not None:
            lines.append(["total" if i == 0 else _csv_cell(c, s.totals.get(c, "")) if c in s.totals else ""
                          for i, c in enumerate(columns)])
        yield _csv_lines(lines)


# --- XLSX -----------------------------------------------------------------------------------

def xlsx_stream(r: Report, job_chunks: Iterator[pd.DataFrame] | None = None) -> Iterator[bytes]:
    """The report as an XLSX workbook, a sheet per section and one for the charts; written in
    constant-memory mode to a temporary file and streamed from it."""
    with tempfile.TemporaryFile() as out:
        book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
        bold = book.add_format({"bold": True})
        money = book.add_format({"num_format": "#,##0.0000"})
        used: set[str] = set()
        for s in r.sections:
            name = _sheet_name(s.name, used)
            sheet = book.add_worksheet(name)
            columns = [str(c) for c in s.frame.columns]
            sheet.write_string(0, 0, safe_cell(s.title), bold)
            for col, c in enumerate(columns):
                sheet.write_string(1, col, safe_cell(c), bold)
            row = 2
            frames = job_chunks if (job_chunks is not None and s.name == "jobs") else iter([s.frame])
            for frame in frames:
                for values in frame.itertuples(index=False, name=None):
                    for col, (c, v) in enumerate(zip(columns, values)):
                        _xlsx_cell(sheet, row, col, c, v, money)
                    row += 1
            if s.totals is not None:
                sheet.write_string(row, 0, "total", bold)
                for col, c in enumerate(columns):
                    if c in s.totals and col:
                        _xlsx_cell(sheet, row, col, c, s.totals[c], money)
        if r.charts:
            sheet = book.add_worksheet(_sheet_name("charts", used))
            for i, chart in enumerate(r.charts):
                sheet.insert_image(i * 22, 0, f"{chart.name}.png", {"image_data": io.BytesIO(chart_png(r, chart))})
        book.close()
        out.seek(0)
        while block := out.read(CHUNK_BYTES):
            yield block


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(ch for ch in name if ch not in "[]:*?/\\")[:28] or "sheet"
    candidate, n = base, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{base[:25]}-{n}"
    used.add(candidate.lower())
    return candidate


def _xlsx_cell(sheet: Any, row: int, col: int, column: str, value: Any, money: Any) -> None:
    if _missing(value):
        return
    if column in MONEY_COLUMNS or column.endswith("cost_saved"):
        sheet.write_number(row, col, int(value) / 10_000, money)
    elif column in TIME_COLUMNS:
        sheet.write_string(row, col, iso(int(value)) or "")
    elif isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        sheet.write_boolean(row, col, bool(value))
    elif isinstance(value, (int, float)) or hasattr(value, "dtype"):
        sheet.write_number(row, col, float(value) if not float(value).is_integer() else int(value))
    else:
        sheet.write_string(row, col, safe_cell(str(value)))


# --- HTML and PDF ---------------------------------------------------------------------------

_ENV = jinja2.Environment(autoescape=True)
_HTML_BODY = _ENV.from_string("""<p>From {{ period.from }} to {{ period.to }} ({{ period.timezone }})</p>
{% for c in charts %}<figure><img alt="{{ c.title }}" src="data:image/png;base64,{{ c.png }}"><figcaption>{{ c.title }}</figcaption></figure>{% endfor %}
{% for s in sections %}<h2>{{ s.title }}</h2>{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
<table><thead><tr>{% for c in s.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in s.rows %}<tr>{% for c in s.columns %}<td{% if row[c] is number %} class="n"{% endif %}>{{ row[c] if row[c] is not none else "" }}</td>{% endfor %}</tr>{% endfor %}
{% if s.totals %}<tr class="total">{% for c in s.columns %}<td>{% if loop.first %}total{% elif c in s.totals %}{{ s.totals[c] }}{% endif %}</td>{% endfor %}</tr>{% endif %}
</tbody></table>{% if s.truncated %}<p class="note">{{ s.truncated }} more rows: download the CSV or XLSX.</p>{% endif %}{% endfor %}
{% for n in r.notes %}<p class="note">{{ n }}</p>{% endfor %}
<dl>{% for k, v in definitions.items() %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>""")
_HTML = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ r.title }} · PageLedger</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}td.n{text-align:right}tr.total{font-weight:bold}
.note{color:#555}img{max-width:100%}</style></head><body>
<h1>{{ r.title }}</h1>
{{ body }}
</body></html>""")
HTML_ROWS = 500


def html_body(r: Report, rows: int = HTML_ROWS) -> Markup:
    """The report as an HTML fragment (its period, charts, tables, notes; every value escaped):
    the body of the html format, and what the web console shows inside its own layout (with
    fewer `rows` a table, to keep its page light: the rest are in the CSV and XLSX)."""
    data = report_json(r)
    for s in data["sections"]:
        s["truncated"] = max(0, len(s["rows"]) - rows)
        s["rows"] = s["rows"][:rows]
    charts = [{"title": c.title, "png": base64.b64encode(chart_png(r, c)).decode()} for c in r.charts]
    return Markup(_HTML_BODY.render(r=r, period=data["period"], sections=data["sections"], charts=charts,
                                    definitions=DEFINITIONS))


def html_page(r: Report) -> bytes:
    return _HTML.render(r=r, body=html_body(r)).encode("utf-8")


def pdf_bytes(r: Report) -> bytes:
    """Title and parameters, the charts, then each section's table (the first PDF_ROWS_A_PAGE
    rows × 3 pages; the CSV and XLSX carry every row)."""
    data = report_json(r)
    buf = io.BytesIO()
    with _mpl().PdfPages(buf, metadata={"Title": r.title, "Creator": "PageLedger",
                                 "CreationDate": datetime.now(timezone.utc)}) as pdf:
        fig = _mpl().Figure(figsize=(8.27, 11.69))
        fig.text(0.08, 0.92, r.title, fontsize=20, weight="bold")
        period = data["period"]
        lines = [f"From {period['from']}", f"to {period['to']}", f"time zone {period['timezone']}", ""]
        lines += [f"{k}: {v}" for k, v in data["parameters"].items() if k not in ("from", "to", "format")]
        lines += ["", *r.notes, "", *(f"{k}: {v}" for k, v in DEFINITIONS.items())]
        for f in r.factors:
            lines.append(f"{f['setting']} = {f['value']:g} ({f['source'][:90]})")
        fig.text(0.08, 0.88, "\n".join(_wrap(line) for line in lines), fontsize=9, va="top")
        pdf.savefig(fig)
        for chart in r.charts:
            pdf.savefig(_chart_figure(r, chart))
        for s in data["sections"]:
            rows = s["rows"]
            for page, start in enumerate(range(0, max(len(rows), 1), PDF_ROWS_A_PAGE)):
                if page == 3:
                    break
                fig = _mpl().Figure(figsize=(11.69, 8.27))
                ax = fig.add_subplot()
                ax.set_axis_off()
                ax.set_title(s["title"] + (f" (continued)" if page else ""), loc="left")
                body = [[_pdf_text(row[c]) for c in s["columns"]] for row in rows[start:start + PDF_ROWS_A_PAGE]]
                if start + PDF_ROWS_A_PAGE >= len(rows) and s.get("totals"):
                    body.append(["total" if i == 0 else _pdf_text(s["totals"].get(c)) for i, c in enumerate(s["columns"])])
                if body and s["columns"]:
                    table = ax.table(cellText=body, colLabels=s["columns"], loc="upper left", cellLoc="left")
                    table.auto_set_font_size(False)
                    table.set_fontsize(6 if len(s["columns"]) > 8 else 8)
                else:
                    ax.text(0, 0.9, "nothing in this period" + (f" — {s['note']}" if s.get("note") else ""))
                if len(rows) > 3 * PDF_ROWS_A_PAGE and page == 2:
                    fig.text(0.05, 0.02, f"{len(rows) - 3 * PDF_ROWS_A_PAGE} more rows: see the CSV or XLSX.")
                pdf.savefig(fig)
    return buf.getvalue()


def _wrap(line: str, width: int = 100) -> str:
    return "\n".join(line[i:i + width] for i in range(0, len(line), width)) or line


def _pdf_text(value: Any) -> str:
    text = "" if value is None else str(value)
    return text[:40].replace("$", r"\$")  # matplotlib reads $…$ as mathtext


def render(r: Report, fmt: str, job_chunks: Callable[[], Iterator[pd.DataFrame]] | None = None) -> Iterator[bytes]:
    """The report in `fmt` as bytes, in pieces (CSV and XLSX stream the job list's rows)."""
    if fmt == "csv":
        return csv_stream(r, job_chunks() if job_chunks else None)
    if fmt == "xlsx":
        return xlsx_stream(r, job_chunks() if job_chunks else None)
    if fmt == "pdf":
        return iter([pdf_bytes(r)])
    if fmt == "html":
        return iter([html_page(r)])
    raise ValueError(f"no format {fmt!r}")
