"""Parquet: rows as dicts, read a batch at a time."""
from __future__ import annotations

from typing import BinaryIO, Iterator

import pyarrow.parquet as pq

from pipeline.formats.records import RawRecord

_BATCH_ROWS = 1024


def read_parquet(seekable: BinaryIO) -> Iterator[RawRecord]:
    """Yield every row; nested columns arrive as dicts and lists, so dotted field paths work."""
    parquet_file = pq.ParquetFile(seekable)
    position = 0
    for batch in parquet_file.iter_batches(batch_size=_BATCH_ROWS):
        for row in batch.to_pylist():
            yield RawRecord(position, row)
            position += 1
