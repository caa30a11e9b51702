"""Parquet: rows as dicts, read a batch at a time."""
from __future__ import annotations

from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.formats.records import RECORD_TOO_LARGE, RawRecord, RecordError

_BATCH_ROWS = 1024


def cell_bytes(array: pa.Array) -> np.ndarray:
    """Bytes of string and binary data in each row of `array`, through dictionaries, structs,
    lists and maps (a text field may sit at any dotted path)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return cell_bytes(array.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return pc.fill_null(pc.binary_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        large = pa.large_string() if pa.types.is_string_view(kind) else pa.large_binary()
        return cell_bytes(array.cast(large))
    if pa.types.is_struct(kind):
        total = np.zeros(len(array), dtype=np.int64)
        for child in array.flatten():   # children with the struct's own nulls applied
            total += cell_bytes(child)
        return total
    if pa.types.is_map(kind):   # no list kernels for maps: sum keys and items per row by offsets
        offsets = array.offsets.to_numpy(zero_copy_only=False)
        start, end = int(offsets[0]), int(offsets[-1])
        per_entry = cell_bytes(array.keys.slice(start, end - start)) + cell_bytes(array.items.slice(start, end - start))
        parents = np.repeat(np.arange(len(array)), np.diff(offsets))
        return np.bincount(parents, weights=per_entry, minlength=len(array)).astype(np.int64)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind) \
            or pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind):
        values, parents = pc.list_flatten(array), pc.list_parent_indices(array)
        if len(values) == 0:
            return np.zeros(len(array), dtype=np.int64)
        return np.bincount(parents.to_numpy(zero_copy_only=False), weights=cell_bytes(values),
                           minlength=len(array)).astype(np.int64)
    return np.zeros(len(array), dtype=np.int64)


def read_parquet(seekable: BinaryIO, max_record_bytes: int) -> Iterator[RawRecord | RecordError]:
    """Yield every row; nested columns arrive as dicts and lists, so dotted field paths work.

    A row whose string cells add up to more than max_record_bytes is an error, as an over-long
    JSON line is (its row group is in memory already: Parquet cannot be read by halves of a cell).
    """
    parquet_file = pq.ParquetFile(seekable)
    position = 0
    for batch in parquet_file.iter_batches(batch_size=_BATCH_ROWS):
        sizes = np.zeros(batch.num_rows, dtype=np.int64)
        for column in batch.columns:
            sizes += cell_bytes(column)
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
