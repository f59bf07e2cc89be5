"""What the `document_names` privacy setting makes of a document name (domain.site_settings).

- keep: the name as the agent sent it;
- mask: only its extension, as "*.pdf" (a name without one becomes "*"), so that reports can
  still tell documents' kinds apart without telling what they were;
- omit: nothing at all.
"""
from __future__ import annotations

KEEP, MASK, OMIT = "keep", "mask", "omit"
MAX_EXTENSION = 8  # longer "extensions" are a part of the name, not a kind of document


def shown_document(name: str, policy: str) -> str:
    if policy == KEEP or not name:
        return name
    if policy == OMIT:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = base.rpartition(".")
    if dot and stem and 0 < len(extension) <= MAX_EXTENSION and extension.isalnum():
        return f"*.{extension.lower()}"
    return "*"
