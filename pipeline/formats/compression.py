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

# Compressed bytes fed per call. Small, because one call returns all the output of
# its input, and crafted input can expand by a factor of thousands.
_INPUT_CHUNK = 16384


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
    """Raw stream over concatenated members/frames of one codec; `truncated` after a cut."""

    def __init__(self, source: BinaryIO, codec: str):
        self._source = source
        self.codec = codec
        self.truncated = False
        self._new = _FACTORIES[codec]
        self._member = self._new()
        self._member_has_input = False
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            self._pending = self._next_output()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next_output(self) -> bytes:
        chunk = self._source.read(_INPUT_CHUNK)
        if not chunk:
            self._done = True
            self.truncated = self._member_has_input
            return b""
        out = []
        while chunk:
            out.append(self._member.decompress(chunk))
            self._member_has_input = True
            if not self._member.eof:
                break
            chunk = self._member.unused_data
            self._member = self._new()
            self._member_has_input = False
            if chunk and not chunk.strip(b"\x00") and self.codec == "gzip":
                chunk = b""  # zero padding after the last gzip member, as gzip(1) allows
        return b"".join(out)


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
