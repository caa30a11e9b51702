"""Streaming decompression told by magic bytes, with truncation always detected and
everything before the damage delivered.

Traps avoided here: zstandard's `stream_reader` ends quietly when a file is cut
mid-frame (losing the rest of a shard without a trace); a BufferedReader over
`gzip.GzipFile` discards the bytes it had already decompressed when EOFError fires;
and parsers such as warcio take EOFError for a clean end of archive. So one raw
reader serves all codecs, returns each chunk's output as soon as it has it, and
on a cut stream ends like a clean one but sets `truncated`, which the caller checks
once the parser is done.
"""
from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import BinaryIO, Callable, Protocol

import zstandard

_MAGIC = (("gzip", b"\x1f\x8b"), ("zstd", b"\x28\xb5\x2f\xfd"), ("bzip2", b"BZh"), ("xz", b"\xfd7zXZ\x00"))

# Compressed bytes read per call, and decompressed bytes returned per call: a crafted file
# (a "decompression bomb") can expand a thousands-fold, so output is capped, not input.
_INPUT_CHUNK = 16384
_OUTPUT_CAP = 1 << 20
# zstandard's decompressobj has no output cap: feed it little at a time instead. A zstd
# block cannot expand beyond ~32,000x (128 KB from 4 bytes), so 1 KB in is at most ~32 MB out.
_ZSTD_FEED = 1024


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


_FACTORIES: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "zstd": lambda: zstandard.ZstdDecompressor().decompressobj(),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


class DecompressingReader(io.RawIOBase):
    """Raw stream over concatenated members/frames of one codec; `truncated` after a cut.
    Memory stays bounded whatever the expansion ratio: see _OUTPUT_CAP and _ZSTD_FEED."""

    def __init__(self, source: BinaryIO, codec: str):
        self._source = source
        self.codec = codec
        self.truncated = False
        self._new = _FACTORIES[codec]
        self._member = self._new()
        self._member_has_input = False
        self._input = b""           # compressed bytes read but not yet given to the decompressor
        self._pending = b""
        self._offset = 0            # into _pending: no re-slicing of a large buffer per small read
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._offset >= len(self._pending) and not self._done:
            self._pending, self._offset = self._next_output(), 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset:self._offset + n]
        self._offset += n
        return n

    def _next_output(self) -> bytes:
        """At most about _OUTPUT_CAP bytes (zstd: what _ZSTD_FEED bytes expand to)."""
        if not self._input and not self._has_buffered_output():
            self._input = self._source.read(_INPUT_CHUNK)
            if not self._input and self.codec == "gzip" and self._member_has_input:
                tail = self._member.flush()   # output zlib still held when its input ran out
                if tail:
                    return tail
            if not self._input:
                self._done = True
                self.truncated = self._member_has_input
                return b""
        out, remaining = self._decompress(self._input)
        self._member_has_input = True
        if self._member.eof:
            # zlib repeats the bytes past the member's end in both unused_data and unconsumed_tail;
            # zstd's `remaining` was never given to it
            remaining = self._member.unused_data + (remaining if self.codec == "zstd" else b"")
            self._member = self._new()
            self._member_has_input = False
            if remaining and not remaining.strip(b"\x00") and self.codec == "gzip":
                remaining = b""  # zero padding after the last gzip member, as gzip(1) allows
        self._input = remaining
        return out

    def _decompress(self, data: bytes) -> tuple[bytes, bytes]:
        """(output, input not yet given to the decompressor)."""
        member = self._member
        if self.codec == "zstd":
            return member.decompress(data[:_ZSTD_FEED]), data[_ZSTD_FEED:]
        if self.codec == "gzip":   # zlib hands back the input it did not use as unconsumed_tail
            return member.decompress(data, _OUTPUT_CAP), member.unconsumed_tail
        return member.decompress(data, max_length=_OUTPUT_CAP), b""   # bz2 and lzma keep it internally

    def _has_buffered_output(self) -> bool:
        """Whether the decompressor still holds input it has not turned into output."""
        if self.codec in ("bzip2", "xz"):
            return not self._member.needs_input and not self._member.eof
        return False


def sniff_compression(head: bytes) -> str | None:
    """Compression named by the stream's first bytes: gzip, zstd, bzip2, xz or None."""
    for name, magic in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_decompressed(raw: BinaryIO,
                      buffer_size: int = 1 << 16) -> tuple[io.BufferedReader, DecompressingReader | None]:
    """Wrap a raw binary stream so reads return decompressed bytes.

    Returns the buffered stream and its decompressor (None when the stream is plain);
    check the decompressor's `truncated` once the stream has been read to its end.
    """
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw, buffer_size)  # type: ignore[arg-type]
    compression = sniff_compression(raw.peek(8)[:8])
    if compression is None:
        return raw, None  # type: ignore[return-value]
    decoder = DecompressingReader(raw, compression)
    return io.BufferedReader(decoder, buffer_size), decoder
