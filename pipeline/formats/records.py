"""What format readers yield: a raw record, or an error that says what was wrong with it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Error kinds written to errors/`kind`. Keep README's table in step.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
INVALID_UTF8 = "invalid_utf8"
INVALID_UNICODE = "invalid_unicode"
MISSING_TEXT = "missing_text"
TEXT_NOT_STRING = "text_not_string"
EMPTY_TEXT = "empty_text"
RECORD_TOO_LARGE = "record_too_large"
NON_TEXT_PAYLOAD = "non_text_payload"
TRUNCATED_FILE = "truncated_file"
TRUNCATED_RECORD = "truncated_record"
BAD_CONTENT_LENGTH = "bad_content_length"
UNREADABLE_FILE = "unreadable_file"
UNKNOWN_FORMAT = "unknown_format"

EXCERPT_BYTES = 1024


@dataclass
class RawRecord:
    """One input record before field mapping: its index in the file and its fields."""
    position: int
    fields: dict[str, Any]
    byte_offset: int | None = None


@dataclass
class RecordError:
    """A record or file that could not become a document, with the reason."""
    kind: str
    message: str
    position: int | None = None
    byte_offset: int | None = None
    raw_excerpt: bytes | None = None
    raw_size: int | None = None

    def __post_init__(self) -> None:
        if self.raw_excerpt is not None and len(self.raw_excerpt) > EXCERPT_BYTES:
            self.raw_excerpt = bytes(self.raw_excerpt[:EXCERPT_BYTES])


@dataclass
class SkippedRecords:
    """Input units that are not documents by design (blank lines, WARC request records)."""
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n
