"""Small builders for test input files in every supported format."""
from __future__ import annotations

import filecmp
import glob
import gzip
import io
import json
import os
from typing import Any

import pyarrow.parquet as pq
import zstandard


def jsonl_bytes(records: list[Any]) -> bytes:
    """Objects become JSON lines; bytes are written as the raw line."""
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def warc_member(rtype: str, block: bytes, url: str | None = None, date: str = "2024-05-18T01:58:10Z",
                record_id: str = "<urn:uuid:11111111-2222-4333-8444-555555555555>",
                content_type: str | None = None) -> bytes:
    """One WARC record as Common Crawl writes it: its own gzip member."""
    lines = ["WARC/1.0", f"WARC-Type: {rtype}", f"WARC-Date: {date}", f"WARC-Record-ID: {record_id}"]
    if url:
        lines.append(f"WARC-Target-URI: {url}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(block)}")
    return gz(("\r\n".join(lines) + "\r\n\r\n").encode() + block + b"\r\n\r\n")


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def write(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_rows(run_dir: str, table: str) -> list[dict[str, Any]]:
    files = sorted(glob.glob(os.path.join(run_dir, table, "*.parquet")))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def manifest(run_dir: str) -> dict[str, Any]:
    with open(os.path.join(run_dir, "manifest.json")) as f:
        return json.load(f)


def parquet_bytes(table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def files_under(folder: str, suffix: str = "") -> list[str]:
    """The files below `folder` ending in `suffix`, relative to it, sorted."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names if name.endswith(suffix))


def assert_same_bytes(one: str, two: str, names: list[str]) -> None:
    """The files `names` hold the same bytes under folders `one` and `two`."""
    _, mismatch, errors = filecmp.cmpfiles(one, two, names, shallow=False)
    assert mismatch == [] and errors == [], (mismatch, errors)
