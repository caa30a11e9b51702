import bz2
import io
import lzma

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
