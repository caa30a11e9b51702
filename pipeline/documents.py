"""Turn a raw input record into a document row, or say why it cannot be one."""
from __future__ import annotations

import base64
import copy
import datetime as dt
import decimal
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from detectors.textnorm import text_hash
from pipeline.fields import FieldMapping, first_present, delete_path, parse_date
from pipeline.formats.records import (
    EMPTY_TEXT, INVALID_UNICODE, MISSING_TEXT, TEXT_NOT_STRING, RawRecord, RecordError,
)
from schemas import FLAG_CONTROL_CHARACTERS, FLAG_DATE_UNPARSEABLE


# C0 controls and DEL, but not tab, newline, vertical tab, form feed or carriage return:
# NUL or ESC in text is a sign of binary or mis-decoded content. The text is kept as it is
# (changing it silently would be worse) and flagged, so a reader can leave such rows out.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SourceFile:
    """An input file as the pipeline knows it."""
    path: str          # full path, as matched
    relative: str      # path relative to the input pattern's base folder: used in derived ids
    format: str        # jsonl, parquet, warc or wet
    size_bytes: int


def record_key(source_file: str, position: int) -> int:
    """63-bit key unique to one input record; spreads records evenly over shards. 63, not
    64 bits: Beam encodes ints below 2**63 natively and pickles larger ones."""
    digest = hashlib.blake2b(f"{source_file}\x00{position}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 1


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _excerpt_of(record: RawRecord) -> bytes:
    try:
        return json.dumps(record.fields, ensure_ascii=False, default=_json_default)[:1024].encode("utf-8", "replace")
    except (ValueError, RecursionError):
        return repr(record.fields)[:1024].encode("utf-8", "replace")


def _carried_fields(fields: dict[str, Any], text_path: str) -> str | None:
    rest = dict(fields)
    if "." in text_path:
        head = text_path.split(".", 1)[0]
        rest[head] = copy.deepcopy(rest[head])
        delete_path(rest, text_path)
    else:
        rest.pop(text_path, None)
    if not rest:
        return None
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def build_document(record: RawRecord, mapping: FieldMapping, source: SourceFile) -> dict[str, Any] | RecordError:
    """A document dict with the schema's document columns (provenance not yet set), plus
    `key`; or a RecordError for a record with no usable text."""
    text_path, text = first_present(record.fields, mapping.text)

    def error(kind: str, message: str) -> RecordError:
        return RecordError(kind, message, record.position, record.byte_offset, _excerpt_of(record))

    if text_path is None:
        return error(MISSING_TEXT, f"no text field: tried {', '.join(mapping.text)} "
                                   "(set --text-field or --preset to where the text is)")
    if not isinstance(text, str):
        return error(TEXT_NOT_STRING, f"text field {text_path!r} holds a {type(text).__name__}, not a string")
    if not text.strip():
        return error(EMPTY_TEXT, f"text field {text_path!r} is empty or whitespace only")

    _, raw_id = first_present(record.fields, mapping.id)
    if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id).strip():
        doc_id = str(raw_id)
    else:
        doc_id = f"{source.relative}:{record.position}"
    _, raw_url = first_present(record.fields, mapping.url)
    url = raw_url if isinstance(raw_url, str) and raw_url else None
    date_path, raw_date = first_present(record.fields, mapping.date)
    date = parse_date(raw_date) if date_path is not None else None
    flags = [FLAG_DATE_UNPARSEABLE] if date_path is not None and date is None else []
    if _CONTROL_CHARACTERS.search(text):
        flags.append(FLAG_CONTROL_CHARACTERS)

    try:
        source_fields = _carried_fields(record.fields, text_path)
        for value in (text, doc_id, url, source_fields):
            if value is not None:
                value.encode("utf-8")
    except UnicodeEncodeError as e:
        return error(INVALID_UNICODE, f"record holds a character that is not valid Unicode "
                                      f"({e.reason}, e.g. a lone surrogate escape)")
    except (ValueError, RecursionError) as e:
        return error(INVALID_UNICODE, f"record's other fields cannot be carried through: {e}")

    return {
        "key": record_key(source.path, record.position),
        "id": doc_id,
        "text": text,
        "url": url,
        "date": date,
        "source_file": source.path,
        "source_position": record.position,
        "source_format": source.format,
        "source_fields": source_fields,
        "text_hash": text_hash(text),
        "flags": flags,
    }
