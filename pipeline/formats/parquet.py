"""Parquet: rows as dicts, read a batch at a time."""
from __future__ import annotations

from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.formats.records import RECORD_TOO_LARGE, RawRecord, RecordError

_BATCH_ROWS = 1024


def _row_bytes(batch: pa.RecordBatch) -> np.ndarray:
    """Bytes of each row's top-level string and binary cells (where oversized text lives)."""
    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) \
                or pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            sizes += pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
    return sizes


def read_parquet(seekable: BinaryIO, max_record_bytes: int) -> Iterator[RawRecord | RecordError]:
    """Yield every row; nested columns arrive as dicts and lists, so dotted field paths work.

    A row whose string cells add up to more than max_record_bytes is an error, as an over-long
    JSON line is (its row group is in memory already: Parquet cannot be read by halves of a cell).
    """
    parquet_file = pq.ParquetFile(seekable)
    position = 0
    for batch in parquet_file.iter_batches(batch_size=_BATCH_ROWS):
        sizes = _row_bytes(batch)
        oversized = set(np.flatnonzero(sizes > max_record_bytes).tolist())
        for index, row in enumerate(batch.to_pylist()):
            if index in oversized:
                size = int(sizes[index])
                yield RecordError(RECORD_TOO_LARGE,
                                  f"Parquet row holds {size} bytes of text, over the {max_record_bytes}-byte limit "
                                  "(raise --max-record-bytes to read it)", position, raw_size=size)
            else:
                yield RawRecord(position, row)
            position += 1
