"""Batched shuffles: many small records travel as one array-valued element per partition.

A Python runner pays tens of microseconds per shuffled element, so keying each of a
document's LSH bands separately would cost more than the hashing itself. Instead a DoFn
buffers records, splits them by partition (hash of the real key mod P) and emits one
element per partition, holding a partition's share until it fills a batch (so the
elements do not multiply with P); a GroupByKey on the partition then brings every record
of a real key together, and the receiving step groups by the real key with numpy. Same semantics
as a GroupByKey on the real key, with P-times fewer, larger elements; results do not
depend on P, on bundle sizes or on worker count.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

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
        outputs = list(self.flush(batch)) if batch else []
        outputs.extend(self.drain())  # after the last flush, which may add to what is held
        for out in outputs:
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(out.tag, GlobalWindows.windowed_value(out.value))
            else:
                yield GlobalWindows.windowed_value(out)

    def flush(self, batch: list[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def drain(self) -> list[Any]:
        """Outputs still held at the end of the bundle (see PartitionBuffers)."""
        return []


Piece = TypeVar("Piece")


class PartitionBuffers(Generic[Piece]):
    """Holds each partition's pieces until they reach `rows` rows, then releases them as one.

    A batch of B records split over P partitions makes P elements of B/P rows: without
    this, the shuffled elements grow as records x P / B, and the runner's cost per element
    (tens of microseconds, plus encoding each array) with them. Held rows are capped at
    `max_held` in all; past it every partition is released, so memory stays bounded
    whatever P is. Held rows leave with a later element, so this is for the global window
    (batch pipelines) only."""

    def __init__(self, rows: int, max_held: int, size: Callable[[Piece], int],
                 merge: Callable[[list[Piece]], Piece]):
        self._rows, self._max_held, self._size, self._merge = rows, max_held, size, merge
        self._pieces: dict[int, list[Piece]] = {}
        self._held: dict[int, int] = {}
        self._held_total = 0

    def add(self, partition: int, piece: Piece) -> list[tuple[int, Piece]]:
        """Hold the piece; return what is released now (emit all of it)."""
        size = self._size(piece)
        self._pieces.setdefault(partition, []).append(piece)
        self._held[partition] = self._held.get(partition, 0) + size
        self._held_total += size
        if self._held_total > self._max_held:
            return self.drain()
        if self._held[partition] >= self._rows:
            return [self._release(partition)]
        return []

    def drain(self) -> list[tuple[int, Piece]]:
        return [self._release(partition) for partition in sorted(self._pieces)]

    def _release(self, partition: int) -> tuple[int, Piece]:
        pieces = self._pieces.pop(partition)
        self._held_total -= self._held.pop(partition)
        return partition, pieces[0] if len(pieces) == 1 else self._merge(pieces)
