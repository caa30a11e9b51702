"""Deterministic, exactly-once, resumable reading of a run for distributed training.

The selected files are cut into units: by default one Parquet row group each (10,000
rows as firsthand writes them), found from the footers alone. With shuffle on, the units
are ordered by a keyed hash of (seed, unit); unit i of that order goes to reader slot
i mod (world_size x num_workers), slot = rank x num_workers + worker, so every row is
read by exactly one data-loader worker of one rank. Inside a unit the selected rows are
ordered by a keyed hash of (seed, unit, row). The hash is this module's own integer
arithmetic, so the order is the same under any NumPy version and on any machine.

The position (units finished, rows taken from the current unit) is exact as soon as an
iterator is created and after every row or batch; resuming from it yields exactly the rest.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from firsthand_reader.run_folder import RunFolder, Unit
from firsthand_reader.selection import Selection

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fixed bijection on uint64, vectorised."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def keyed_order(seed: int, salt: int, n: int) -> np.ndarray:
    """A permutation of range(n) fixed by (seed, salt)."""
    key = _mix(np.array([(seed & 0xFFFFFFFFFFFFFFFF) ^ ((salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)],
                        dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return np.argsort(_mix(np.arange(n, dtype=np.uint64) + key), kind="stable")


@dataclass(frozen=True)
class Position:
    units_done: int = 0     # units of this reader's sequence fully read
    rows_done: int = 0      # selected rows already taken from the next unit
    fingerprint: str = ""   # of the run and the reader settings: a position only resumes its own reader

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Position":
        return cls(**data)


@dataclass
class ShardReader:
    """One data-loader worker's share of a run. See the module docstring."""
    run: RunFolder
    selection: Selection = field(default_factory=Selection)
    columns: list[str] | None = None     # None: every column
    seed: int = 0
    shuffle: bool = True
    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1
    unit_rows: int | None = None         # None: one row group per unit (each row group decoded once)
    position: Position = field(init=False)
    _cached: tuple[tuple[str, int], pa.Table] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.world_size and 0 <= self.worker < self.num_workers):
            raise ValueError(f"need 0 <= rank < world_size and 0 <= worker < num_workers, got rank {self.rank} of "
                             f"{self.world_size}, worker {self.worker} of {self.num_workers}")
        if self.unit_rows is not None and self.unit_rows < 1:
            raise ValueError(f"unit_rows must be at least 1 (or None for whole row groups), got {self.unit_rows}")
        self.tables = self.run.document_tables(self.selection.tables)
        self.position = Position(fingerprint=self.fingerprint())

    def fingerprint(self) -> str:
        """What fixes the reading order; the column projection does not."""
        settings = {"run": [self.run.manifest.get("started_at"), self.run.manifest.get("finished_at"),
                            self.run.manifest.get("outputs")],
                    "selection": asdict(self.selection), "tables": self.tables, "seed": self.seed,
                    "shuffle": self.shuffle, "rank": self.rank, "world_size": self.world_size,
                    "worker": self.worker, "num_workers": self.num_workers, "unit_rows": self.unit_rows}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def units(self) -> list[tuple[int, Unit]]:
        """(global unit index, unit) for this reader, in reading order."""
        units = self.run.units(self.tables, self.unit_rows)
        order = keyed_order(self.seed, -1, len(units)) if self.shuffle else np.arange(len(units))
        slots, slot = self.world_size * self.num_workers, self.rank * self.num_workers + self.worker
        return [(int(i), units[i]) for k, i in enumerate(order) if k % slots == slot]

    def _row_group(self, unit: Unit, columns: list[str] | None) -> pa.Table:
        key = (unit.path, unit.row_group)
        if self._cached is None or self._cached[0] != key:   # units of one row group follow each other unshuffled
            self._cached = (key, self.run.open_row_group(unit, columns))
        return self._cached[1]

    def _selected(self, index: int, unit: Unit) -> pa.Table:
        wanted = None if self.columns is None else list(dict.fromkeys(self.columns + self.selection.columns()))
        table = self._row_group(unit, wanted).slice(unit.start, unit.stop - unit.start)
        table = table.filter(pa.array(self.selection.mask(table)))
        if self.shuffle:
            table = table.take(keyed_order(self.seed, index, table.num_rows))
        return table if self.columns is None else table.select(self.columns)

    def _tables_from(self, start: Position) -> Iterator[tuple[int, pa.Table, int]]:
        """(index in this reader's sequence, selected rows, first row to take) from `start` on."""
        for k, (index, unit) in enumerate(self.units()):
            if k >= start.units_done:
                yield k, self._selected(index, unit), start.rows_done if k == start.units_done else 0

    def _at(self, k: int, row: int, rows_in_unit: int) -> Position:
        done = row >= rows_in_unit   # the end of a unit is the start of the next
        return Position(k + 1 if done else k, 0 if done else row, self.position.fingerprint)

    def batches(self, batch_size: int = 1024, start: Position | dict | None = None) -> Iterator[pa.RecordBatch]:
        """Record batches of at most batch_size rows (a batch never spans two units).
        `self.position` is set to `start` at once and is exact after each batch."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.position = self._start(start)
        return self._batches(batch_size, self.position)

    def _batches(self, batch_size: int, start: Position) -> Iterator[pa.RecordBatch]:
        for k, table, offset in self._tables_from(start):
            for lo in range(offset, table.num_rows, batch_size):
                hi = min(lo + batch_size, table.num_rows)
                self.position = self._at(k, hi, table.num_rows)
                yield from table.slice(lo, hi - lo).to_batches(max_chunksize=batch_size)
            self.position = self._at(k, table.num_rows, table.num_rows)

    def documents(self, start: Position | dict | None = None) -> Iterator[dict[str, Any]]:
        """One dict per row. `self.position` is set to `start` at once and is exact after each row."""
        self.position = self._start(start)
        return self._documents(self.position)

    def _documents(self, start: Position) -> Iterator[dict[str, Any]]:
        for k, table, offset in self._tables_from(start):
            for lo in range(offset, table.num_rows, 256):
                rows = table.slice(lo, 256).to_pylist()
                for i, row in enumerate(rows):
                    self.position = self._at(k, lo + i + 1, table.num_rows)
                    yield row
            self.position = self._at(k, table.num_rows, table.num_rows)

    def _start(self, start: Position | dict | None) -> Position:
        if start is None:
            return Position(fingerprint=self.fingerprint())
        start = Position.from_dict(start) if isinstance(start, dict) else start
        if start.fingerprint != self.fingerprint():
            raise ValueError("this position was saved by a reader with another run, selection, seed or sharding; "
                             "resume with the same settings")
        return start
