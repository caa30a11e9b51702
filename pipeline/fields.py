"""Field mapping: where each input format keeps its text, id, url and date.

A field is a dotted path into the record (`metadata.url`); a list of paths is
tried in order and the first present one wins. A string that holds a JSON object
(RedPajama's `meta`) is parsed when a path goes through it.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class FieldMapping:
    text: tuple[str, ...]
    id: tuple[str, ...]
    url: tuple[str, ...]
    date: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in asdict(self).items()}


# Presets read these corpora's records unchanged. Sources: each project's
# published record layout (Dolma docs; datatrove JsonlWriter / FineWeb parquet
# columns; RedPajama-V2 `documents` files and V1 `meta`; TFDS/AllenAI C4).
PRESETS: dict[str, FieldMapping] = {
    "dolma": FieldMapping(text=("text",), id=("id",),
                          url=("metadata.url", "url"), date=("created", "metadata.date_download", "added")),
    "fineweb": FieldMapping(text=("text",), id=("id",),
                            url=("url", "metadata.url"), date=("date", "metadata.date")),
    "redpajama": FieldMapping(text=("raw_content", "text"), id=("doc_id", "id"),
                              url=("url", "meta.url"),
                              date=("date_download", "meta.date_download", "meta.timestamp")),
    "c4": FieldMapping(text=("text",), id=("id",), url=("url",), date=("timestamp",)),
}
PRESETS["datatrove"] = PRESETS["fineweb"]
# `auto` tries every preset's paths, so any of the above reads without naming one.
PRESETS["auto"] = FieldMapping(
    text=("text", "raw_content", "content"),
    id=("id", "doc_id"),
    url=("url", "metadata.url", "meta.url"),
    date=("date", "created", "timestamp", "date_download", "metadata.date",
          "metadata.date_download", "meta.date_download", "meta.timestamp", "added"),
)

# WARC/WET records come out of the reader with these fixed names.
WARC_MAPPING = FieldMapping(text=("text",), id=("id",), url=("url",), date=("date",))


def mapping_from(preset: str, text: str | None = None, id: str | None = None,
                 url: str | None = None, date: str | None = None) -> FieldMapping:
    """A preset, with any field overridden by a comma-separated list of paths."""
    if preset not in PRESETS:
        raise ValueError(f"unknown field preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    base = PRESETS[preset]

    def pick(override: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        if override is None:
            return default
        paths = tuple(p.strip() for p in override.split(",") if p.strip())
        if not paths:
            raise ValueError("a field override needs at least one path")
        return paths

    return FieldMapping(pick(text, base.text), pick(id, base.id), pick(url, base.url), pick(date, base.date))


def get_path(record: Any, path: str) -> Any:
    """The value at a dotted path, or _MISSING."""
    value = record
    for part in path.split("."):
        if isinstance(value, str) and value[:1] == "{":
            try:
                value = json.loads(value)
            except ValueError:
                return _MISSING
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def first_present(record: dict[str, Any], paths: tuple[str, ...]) -> tuple[str | None, Any]:
    """(path, value) of the first path that is present and not null, else (None, None)."""
    for path in paths:
        value = get_path(record, path)
        if value is not _MISSING and value is not None:
            return path, value
    return None, None


def delete_path(record: dict[str, Any], path: str) -> None:
    """Remove the leaf at a dotted path from a (copied) record, if it is a plain nested dict."""
    parts = path.split(".")
    parent: Any = record
    for part in parts[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_date(value: Any) -> dt.datetime | None:
    """A timezone-aware UTC datetime from an ISO 8601 string, a datetime/date or epoch
    seconds (milliseconds when larger than 1e11); None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return _EPOCH + dt.timedelta(seconds=seconds)
        except (OverflowError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)
