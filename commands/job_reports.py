"""What an agent reports about print jobs, and its validation.

Validation has two faces that accept exactly the same input (a test holds them together):
msgspec decodes and checks a good batch in C (~5 µs a job, the hot path), and the marshmallow
schema — the one the OpenAPI document is generated from — names every bad field when a batch
is refused (~100 µs a job, paid only on bad input).
"""
from __future__ import annotations

import json
import re
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Annotated, Literal

import msgspec
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from adapters.clock import system_clock
from commands.validation import InvalidRequest, flatten_messages
from domain.costs import MAX_IMPRESSIONS
from domain.units import MICROS_PER_DAY, from_micros

PDLS = ("pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown")
MAX_BATCH = 5000
MAX_APPLICATION = 128  # characters of a printing application's name

# Characters no identifier or name may hold: controls (C0, DEL, C1: Cc), format characters
# (Cf: zero-width spaces, bidi overrides, the BOM, soft hyphen — invisible, so two logins that
# look the same could differ), line and paragraph separators (Zl, Zp) and unpaired surrogates
# (Cs: they have no UTF-8 form). PostgreSQL text cannot hold NUL at all. Spelt out as ranges
# (Unicode 15) so both faces use one pattern; tests/unit/test_track_jobs_schema.py checks it
# against the running Python's Unicode database.
FORBIDDEN = (r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
             r"\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
             r"\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
             r"\U000e0001\U000e0020-\U000e007f")
# A document title is free text typed by whoever prints: it may hold TAB, format characters
# (right-to-left marks) and separators; only the other controls and unpaired surrogates are refused.
FORBIDDEN_IN_TEXT = r"\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff"
# The marshmallow face (and /openapi.json) checks these patterns; JobReport.__post_init__ the same
# rules by hand. `\Z`, not `$`, which also matches before a final newline; all are linear.
CLEAN = rf"^[^{FORBIDDEN}]*\Z"
# A name also needs one character that is not white space (str.strip's definition, which is
# Python's `\s`): a login of " " or NBSP alone is nobody, and its seat check failed.
NAME = rf"^(?!\s*\Z)[^{FORBIDDEN}]*\Z"
TEXT = rf"^[^{FORBIDDEN_IN_TEXT}]*\Z"

# Job times: from the Unix epoch to one day ahead of the server's clock (agents' clocks drift,
# and offsets run to ±23:59); every read model shows them as ISO dates.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
AHEAD_MICROS = MICROS_PER_DAY

_Text255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
_FORBIDDEN = re.compile(f"[{FORBIDDEN}]")
_FORBIDDEN_IN_TEXT = re.compile(f"[{FORBIDDEN_IN_TEXT}]")


MAX_PAPER_SIZES = 32  # paper sizes one job may name in paper_counts
_PaperName = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class PaperCount(msgspec.Struct, frozen=True):
    """A job's impressions on one paper size, per copy."""

    pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    colour_pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0


class JobReport(msgspec.Struct, frozen=True):
    """One job as the agent saw it on the print server."""

    job_key: _Text255
    user: _Text255
    printer: _Text255
    submitted_at: Annotated[datetime, msgspec.Meta(tz=True)]
    pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    client_host: Annotated[str, msgspec.Meta(max_length=255)] = ""
    document: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    copies: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    colour_pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    duplex: bool = False
    paper: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "unknown"
    size: Annotated[int, msgspec.Meta(ge=0, le=1 << 40)] = 0
    pdl: Literal["pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown"] = "unknown"
    release_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    # Impressions per paper size (their sums are pages and colour_pages); None: all on `paper`.
    paper_counts: dict[_PaperName, PaperCount] | None = None
    pages_known: bool = True
    colour_known: bool = True
    uncertain: Annotated[str, msgspec.Meta(max_length=255)] = ""
    # The application the job was printed from (agent/printing_application.py); "" not known.
    application: Annotated[str, msgspec.Meta(max_length=MAX_APPLICATION)] = ""

    def __post_init__(self) -> None:
        # Named field by field by the marshmallow face; msgspec only needs to refuse. The
        # character rules of NAME, CLEAN and TEXT in two searches and a strip of each name:
        # a msgspec `pattern` per field took ~5 µs a job, this ~3 (~1.2 without character checks).
        if (_FORBIDDEN.search(f"{self.job_key}{self.user}{self.printer}{self.client_host}{self.paper}"
                              f"{self.release_code or ''}")
                or _FORBIDDEN_IN_TEXT.search(f"{self.document}{self.application}")
                or not (self.job_key.strip() and self.user.strip() and self.printer.strip() and self.paper.strip())
                or (self.release_code is not None and not self.release_code.strip())):
            raise ValueError("a name is blank or holds a forbidden character")
        if self.colour_pages > self.pages:
            raise ValueError("colour_pages cannot exceed pages")
        if _FORBIDDEN_IN_TEXT.search(self.uncertain):
            raise ValueError("uncertain holds a control character")
        if self.paper_counts is not None and _paper_counts_problem(self.paper_counts, self.pages, self.colour_pages):
            raise ValueError("paper_counts do not add up to the job's figures")
        if self.pages * self.copies > MAX_IMPRESSIONS:
            raise ValueError("too many impressions")
        if self.submitted_at < EARLIEST:
            raise ValueError("submitted before 1970")


def _paper_counts_problem(counts: dict, pages: int, colour_pages: int) -> str | None:
    """Why paper_counts (name -> PaperCount, or name -> {"pages", "colour_pages"}) cannot be
    the job's, or None."""
    def figure(count: object, name: str) -> int:
        return getattr(count, name) if not isinstance(count, dict) else count.get(name, 0)

    if len(counts) > MAX_PAPER_SIZES:
        return f"at most {MAX_PAPER_SIZES} paper sizes"
    for name, count in counts.items():
        if _FORBIDDEN.search(name) or not name.strip():
            return f"paper {name!r} is blank or holds a forbidden character"
        if figure(count, "colour_pages") > figure(count, "pages"):
            return f"{name}: colour_pages cannot exceed pages"
    if sum(figure(c, "pages") for c in counts.values()) != pages:
        return "the pages of the paper sizes must add up to pages"
    if sum(figure(c, "colour_pages") for c in counts.values()) != colour_pages:
        return "the colour_pages of the paper sizes must add up to colour_pages"
    return None


class _Batch(msgspec.Struct):
    """The batch's envelope only: its jobs stay undecoded until their number is known good."""

    jobs: list[msgspec.Raw]


def _pattern(pattern: str, error: str = "holds a control, format or separator character") -> validate.Regexp:
    return validate.Regexp(pattern, error=error)


def _name(max_length: int) -> list[validate.Validator]:
    return [validate.Length(1, max_length),
            validate.Regexp(NAME, error="blank, or holds a control, format or separator character")]


# The latest time a job may have been submitted at, as the marshmallow face is told it (its
# nested schemas have no other way to learn the caller's clock); None: no upper bound.
_latest: ContextVar[datetime | None] = ContextVar("latest_submitted_at", default=None)


def time_outside_window(t: datetime, latest: datetime | None) -> str | None:
    """Why `t` is no time a job may hold (None: it may); `latest` None: no upper bound."""
    if t < EARLIEST:
        return "before 1970-01-01T00:00:00Z"
    if latest is not None and t > latest:
        return "more than one day after the server's time"
    return None


class _StrictBoolean(fields.Boolean):
    """JSON true or false only, as msgspec decodes it: `truthy={True}` alone would take 1 too
    (1 == True in Python)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class PaperCountSchema(Schema):
    """A job's impressions on one paper size, per copy."""

    pages = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000))
    colour_pages = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))


class JobReportSchema(Schema):
    """The same rules as JobReport, for error messages and the OpenAPI document."""

    class Meta:
        unknown = EXCLUDE  # newer agents may send more fields

    job_key = fields.String(required=True, validate=_name(255))
    user = fields.String(required=True, validate=_name(255))
    printer = fields.String(required=True, validate=_name(255))
    client_host = fields.String(load_default="", validate=[validate.Length(0, 255), _pattern(CLEAN)])
    document = fields.String(load_default="", validate=[
        validate.Length(0, 1024), _pattern(TEXT, "holds a control character other than TAB, or an unpaired surrogate")])
    submitted_at = fields.AwareDateTime(required=True, metadata={
        "description": "ISO 8601 with offset; from 1970-01-01T00:00:00Z to one day after the server's time"})
    pages = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000),
                           metadata={"description": "impressions per copy, after N-up and page ranges; "
                                                    f"pages × copies at most {MAX_IMPRESSIONS:,}"})
    copies = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10_000))
    colour_pages = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))
    duplex = _StrictBoolean(load_default=False)
    paper = fields.String(load_default="unknown", validate=_name(32))
    size = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1 << 40))
    pdl = fields.String(load_default="unknown", validate=validate.OneOf(PDLS))
    release_code = fields.String(load_default=None, allow_none=True, validate=_name(64))
    paper_counts = fields.Dict(keys=fields.String(validate=_name(32)), values=fields.Nested(PaperCountSchema),
                               load_default=None, allow_none=True, metadata={
                                   "description": "impressions per paper size, per copy (rotation does not change "
                                                  "a size); they add up to pages and colour_pages. Absent: every "
                                                  "page is on `paper` (which is \"mixed\" when sizes differ)"})
    pages_known = _StrictBoolean(load_default=True, metadata={
        "description": "false: pages is the agent's best figure, not a sure count (see uncertain)"})
    colour_known = _StrictBoolean(load_default=True, metadata={
        "description": "false: the agent could not tell the colour pages; priced as the server's "
                       "unknown_colour_charge setting says"})
    uncertain = fields.String(load_default="", validate=[
        validate.Length(0, 255), _pattern(TEXT, "holds a control character other than TAB, or an unpaired surrogate")],
        metadata={"description": "why pages or colour are not known"})
    application = fields.String(load_default="", validate=[
        validate.Length(0, MAX_APPLICATION),
        _pattern(TEXT, "holds a control character other than TAB, or an unpaired surrogate")],
        metadata={"description": "the application the job was printed from (e.g. the PDF's Creator, the "
                                 "PostScript %%Creator comment); empty when the agent could not tell"})

    # Run also when other fields are bad, so the one 400 answer names every bad field. A field
    # that failed its own checks is absent from `data`: figures are compared only when valid.
    @validates_schema(skip_on_field_errors=False)
    def _figures_within_bounds(self, data: dict, **_: object) -> None:
        errors: dict[str, list[str]] = {}
        if "pages" in data and "colour_pages" in data and data["colour_pages"] > data["pages"]:
            errors["colour_pages"] = ["cannot exceed pages"]
        if "pages" in data and "copies" in data and data["pages"] * data["copies"] > MAX_IMPRESSIONS:
            errors.setdefault("pages", []).append(f"pages × copies cannot exceed {MAX_IMPRESSIONS:,}")
        if data.get("paper_counts") is not None and "pages" in data and "colour_pages" in data:
            problem = _paper_counts_problem(data["paper_counts"], data["pages"], data["colour_pages"])
            if problem:
                errors["paper_counts"] = [problem]
        if "submitted_at" in data:
            problem = time_outside_window(data["submitted_at"], _latest.get())
            if problem:
                errors["submitted_at"] = [problem]
        if errors:
            raise ValidationError(errors)


class TrackJobsSchema(Schema):
    """A batch of jobs as posted to /Services/jobs."""

    class Meta:
        unknown = EXCLUDE

    jobs = fields.List(fields.Nested(JobReportSchema), required=True,
                       validate=validate.Length(min=1, max=MAX_BATCH))


_batch_decoder = msgspec.json.Decoder(_Batch)
_job_decoder = msgspec.json.Decoder(JobReport)
_PATH = re.compile(r"at `\$((?:\.\w+|\[\d+\])*)`")


def latest_submitted_at(now: int) -> datetime:
    """The latest `submitted_at` a job may hold when the server's clock says `now` (µs)."""
    return from_micros(now + AHEAD_MICROS)


def decode_batch(body: bytes, latest: datetime) -> list[JobReport]:
    """The fast face alone: the batch's jobs, or msgspec's ValidationError or DecodeError (an
    over-long or empty batch is refused before any job is decoded)."""
    raw_jobs = _batch_decoder.decode(body).jobs
    if not 1 <= len(raw_jobs) <= MAX_BATCH:
        raise _BatchLength(len(raw_jobs))
    reports = []
    for index, raw in enumerate(raw_jobs):
        try:
            report = _job_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise msgspec.ValidationError(str(exc).replace("at `$", f"at `$.jobs[{index}]")) from None
        if report.submitted_at > latest:
            raise msgspec.ValidationError(f"submitted after {latest.isoformat()} - at `$.jobs[{index}].submitted_at`")
        reports.append(report)
    return reports


class _BatchLength(msgspec.ValidationError):
    def __init__(self, length: int) -> None:
        super().__init__(f"a batch holds 1 to {MAX_BATCH} jobs, not {length}")


def check_with_schema(data: object, latest: datetime) -> None:
    """The marshmallow face: raise its ValidationError (every bad field) or return."""
    token = _latest.set(latest)
    try:
        TrackJobsSchema().load(data)
    finally:
        _latest.reset(token)


def parse_batch(body: bytes, now: int | None = None) -> list[JobReport]:
    """Decode and validate a posted batch, or raise InvalidRequest naming every bad field.

    `now` (µs, the server's clock; the system clock when None) bounds `submitted_at`.
    """
    latest = latest_submitted_at(system_clock() if now is None else now)
    try:
        return decode_batch(body, latest)
    except _BatchLength as exc:
        raise InvalidRequest({"jobs": [str(exc)]}) from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        fast_error = str(exc)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest({"_body": [f"not valid JSON: {exc}"]}) from None
    try:
        check_with_schema(data, latest)
    except ValidationError as err:
        raise InvalidRequest(flatten_messages(err.messages)) from None
    # marshmallow accepted what msgspec refused: name the field msgspec pointed at.
    match = _PATH.search(fast_error)
    where = match.group(1).replace("[", ".").replace("]", "").lstrip(".") if match else "_schema"
    raise InvalidRequest({where or "_schema": [fast_error.split(" - at ")[0]]})
