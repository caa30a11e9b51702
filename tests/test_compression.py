import bz2
import io
import lzma
from pathlib import Path

import pytest

from pipeline.formats.compression import open_decompressed, sniff_compression
from tests.helpers import gz, zst

DATA = b"".join(b'{"text": "line %d"}\n' % i for i in range(5000))
# Several MB, so that zstd (128 KB blocks) and bzip2 (900 KB blocks) have complete
# blocks before the cut: a cut block yields nothing, by the codec's design.
BIG = b"".join(b'{"text": "line %d %s"}\n' % (i, b"%x" % (i * 7919)) for i in range(150_000))
CODECS = {"gzip": gz, "zstd": zst, "bzip2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_reads_concatenated_members_completely(codec):
    blob = CODECS[codec](DATA) + CODECS[codec](DATA)
    stream, decoder = open_decompressed(io.BytesIO(blob))
    assert decoder.codec == codec
    assert stream.read() == DATA + DATA
    assert not decoder.truncated


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_truncation_is_flagged_after_delivering_everything_before_it(codec):
    blob = CODECS[codec](BIG)
    stream, decoder = open_decompressed(io.BytesIO(blob[: len(blob) * 3 // 4]))
    delivered = stream.read()
    assert decoder.truncated
    assert len(delivered) > len(BIG) // 3
    assert delivered == BIG[: len(delivered)]


def test_plain_stream_passes_through():
    stream, decoder = open_decompressed(io.BytesIO(DATA))
    assert decoder is None and stream.read() == DATA


def test_gzip_zero_padding_after_last_member_is_accepted():
    stream, decoder = open_decompressed(io.BytesIO(gz(DATA) + b"\x00" * 512))
    assert stream.read() == DATA and not decoder.truncated


def test_sniffing_uses_magic_bytes_not_names():
    assert sniff_compression(zst(b"x")[:8]) == "zstd"
    assert sniff_compression(b'{"text"') is None


_BOMB_READER = """
import resource, sys
from pipeline.formats import SkippedRecords, read_stream
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
items = list(read_stream(lambda: open(sys.argv[1], "rb"), sys.argv[2], SkippedRecords(), 1 << 20))
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
print(",".join(getattr(i, "kind", "record") for i in items), grown)
"""


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zst"])
def test_a_decompression_bomb_is_read_in_bounded_memory(codec, tmp_path):
    """A few hundred KB that expand to 512 MB (one JSON line of 'a's, as 128 concatenated
    members of 4 MB each) end as one record_too_large error; the reading process grows by
    far less than the expansion."""
    import gzip

    import zstandard
    compress = {"gz": lambda d: gzip.compress(d, 9, mtime=0), "bz2": bz2.compress, "xz": lzma.compress,
                "zst": lambda d: zstandard.ZstdCompressor(level=19).compress(d)}[codec]
    block = b"a" * (4 << 20)
    middle = compress(block)
    bomb = compress(b'{"text": "' + block) + middle * 126 + compress(block + b'"}\n')
    path = tmp_path / f"bomb.jsonl.{codec}"
    path.write_bytes(bomb)
    assert len(bomb) < 2 << 20
    kinds, grown_mb = _read_in_a_fresh_process(path, "jsonl")
    assert kinds == "record_too_large"
    assert grown_mb < 160, f"reading a 512 MB expansion grew the process by {grown_mb} MB"


def _read_in_a_fresh_process(path, fmt: str) -> tuple[str, int]:
    """Error kinds (or `record`) read from the file, and how many MB the reading process grew."""
    import subprocess
    import sys
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", _BOMB_READER, str(path), fmt], capture_output=True, text=True,
                            cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    kinds, grown_mb = result.stdout.split()
    return kinds, int(grown_mb)


def test_a_warc_payload_bomb_behind_content_encoding_is_read_in_bounded_memory(tmp_path):
    """A WARC response of ~0.5 MB whose gzip Content-Encoding expands to 512 MB: one
    record_too_large error, and the reader reads only one byte past the limit of it."""
    import zlib
    from tests.helpers import warc_member
    encoder = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip framing, as HTTP sends it
    block = b"a" * (4 << 20)
    body = encoder.compress(b"<html><body><p>") + b"".join(encoder.compress(block) for _ in range(128))
    body += encoder.compress(b"</p></body></html>") + encoder.flush()
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(warc_member("response", response, url="https://bomb.example/"))
    assert path.stat().st_size < 2 << 20
    kinds, grown_mb = _read_in_a_fresh_process(path, "warc")
    assert kinds == "record_too_large"
    assert grown_mb < 160, f"reading a 512 MB expansion grew the process by {grown_mb} MB"
