"""Batched shuffles: many small records travel as one array-valued element per partition.

A Python runner pays tens of microseconds per shuffled element, so keying each of a
document's LSH bands separately would cost more than the hashing itself. Instead a DoFn
buffers records, splits them by partition (hash of the real key mod P) and emits one
element per partition; a GroupByKey on the partition then brings every record of a real
key together, and the receiving step groups by the real key with numpy. Same semantics
as a GroupByKey on the real key, with P-times fewer, larger elements; results do not
depend on P, on bundle sizes or on worker count.
"""
from __future__ import annotations

from typing import Any, Iterator

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

DEFAULT_BUFFER = 4096


class BufferedFn(beam.DoFn):
    """Collects elements and hands them to `flush` in lists of at most `max_items`;
    the rest at the end of the bundle. Subclasses implement `flush` (a generator)."""

    def __init__(self, max_items: int = DEFAULT_BUFFER):
        self._max_items = max_items
        self._buffer: list[Any] = []

    def start_bundle(self) -> None:
        self._buffer = []

    def process(self, element: Any) -> Iterator[Any]:
        self._buffer.append(element)
        if len(self._buffer) >= self._max_items:
            batch, self._buffer = self._buffer, []
            yield from self.flush(batch)

    def finish_bundle(self) -> Iterator[Any]:
        batch, self._buffer = self._buffer, []
        if batch:
            for out in self.flush(batch):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(out.tag, GlobalWindows.windowed_value(out.value))
                else:
                    yield GlobalWindows.windowed_value(out)

    def flush(self, batch: list[Any]) -> Iterator[Any]:
        raise NotImplementedError
