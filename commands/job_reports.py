"""What an agent reports about print jobs, and its validation.

Validation has two faces that accept exactly the same input (a test holds them together):
msgspec decodes and checks a good batch in C (~5 µs a job, the hot path), and the marshmallow
schema — the one the OpenAPI document is generated from — names every bad field when a batch
is refused (~100 µs a job, paid only on bad input).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from commands.validation import InvalidRequest, flatten_messages

PDLS = ("pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown")
MAX_BATCH = 5000

_Text255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


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

    def __post_init__(self) -> None:
        if self.colour_pages > self.pages:
            raise ValueError("colour_pages cannot exceed pages")


class _Batch(msgspec.Struct):
    jobs: Annotated[list[JobReport], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class _StrictBoolean(fields.Boolean):
    """JSON true or false only, as msgspec decodes it: `truthy={True}` alone would take 1 too
    (1 == True in Python)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class JobReportSchema(Schema):
    """The same rules as JobReport, for error messages and the OpenAPI document."""

    class Meta:
        unknown = EXCLUDE  # newer agents may send more fields

    job_key = fields.String(required=True, validate=validate.Length(1, 255))
    user = fields.String(required=True, validate=validate.Length(1, 255))
    printer = fields.String(required=True, validate=validate.Length(1, 255))
    client_host = fields.String(load_default="", validate=validate.Length(0, 255))
    document = fields.String(load_default="", validate=validate.Length(0, 1024))
    submitted_at = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with offset"})
    pages = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000),
                           metadata={"description": "impressions per copy, after N-up and page ranges"})
    copies = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10_000))
    colour_pages = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))
    duplex = _StrictBoolean(load_default=False)
    paper = fields.String(load_default="unknown", validate=validate.Length(1, 32))
    size = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1 << 40))
    pdl = fields.String(load_default="unknown", validate=validate.OneOf(PDLS))
    release_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))

    # Run also when other fields are bad, so the one 400 answer names every bad field. A field
    # that failed its own checks is absent from `data`: the pair is compared only when both
    # are valid whole numbers.
    @validates_schema(skip_on_field_errors=False)
    def _colour_within_pages(self, data: dict, **_: object) -> None:
        if "pages" in data and "colour_pages" in data and data["colour_pages"] > data["pages"]:
            raise ValidationError("cannot exceed pages", field_name="colour_pages")


class TrackJobsSchema(Schema):
    """A batch of jobs as posted to /Services/jobs."""

    class Meta:
        unknown = EXCLUDE

    jobs = fields.List(fields.Nested(JobReportSchema), required=True,
                       validate=validate.Length(min=1, max=MAX_BATCH))


_decoder = msgspec.json.Decoder(_Batch)
_PATH = re.compile(r"at `\$((?:\.\w+|\[\d+\])*)`")


def parse_batch(body: bytes) -> list[JobReport]:
    """Decode and validate a posted batch, or raise InvalidRequest naming every bad field."""
    try:
        return _decoder.decode(body).jobs
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        fast_error = str(exc)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest({"_body": [f"not valid JSON: {exc}"]}) from None
    try:
        TrackJobsSchema().load(data)
    except ValidationError as err:
        raise InvalidRequest(flatten_messages(err.messages)) from None
    # marshmallow accepted what msgspec refused: name the field msgspec pointed at.
    match = _PATH.search(fast_error)
    where = match.group(1).replace("[", ".").replace("]", "").lstrip(".") if match else "_schema"
    raise InvalidRequest({where or "_schema": [fast_error.split(" - at ")[0]]})


