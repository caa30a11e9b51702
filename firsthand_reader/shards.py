"""Deterministic, exactly-once, resumable reading of a run for distributed training.

The selected files are cut into units (row ranges of a row group, from the Parquet footers
alone). With shuffle on, the units are permuted by the seed; unit i goes to reader slot
i mod (world_size x num_workers), slot = rank x num_workers + worker, so every row is read
by exactly one data-loader worker of one rank. Inside a unit the selected rows are
permuted by (seed, unit). The position (units finished, rows taken from the current one)
is exact after every row or batch, and resuming from it yields exactly the rest.
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

DEFAULT_UNIT_ROWS = 1024


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
    unit_rows: int = DEFAULT_UNIT_ROWS
    position: Position = field(init=False)

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.world_size and 0 <= self.worker < self.num_workers):
            raise ValueError(f"need 0 <= rank < world_size and 0 <= worker < num_workers, got rank {self.rank} of "
                             f"{self.world_size}, worker {self.worker} of {self.num_workers}")
        if self.unit_rows < 1:
            raise ValueError(f"unit_rows must be at least 1, got {self.unit_rows}")
        self.position = Position(fingerprint=self.fingerprint())

    def fingerprint(self) -> str:
        settings = {"run": self.run.manifest.get("finished_at"), "selection": asdict(self.selection),
                    "columns": self.columns, "seed": self.seed, "shuffle": self.shuffle, "rank": self.rank,
                    "world_size": self.world_size, "worker": self.worker, "num_workers": self.num_workers,
                    "unit_rows": self.unit_rows}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def units(self) -> list[tuple[int, Unit]]:
        """(global unit index, unit) for this reader, in reading order."""
        units = self.run.units(self.selection.tables, self.unit_rows)
        order = np.random.default_rng(self.seed).permutation(len(units)) if self.shuffle else np.arange(len(units))
        slots, slot = self.world_size * self.num_workers, self.rank * self.num_workers + self.worker
        return [(int(i), units[i]) for k, i in enumerate(order) if k % slots == slot]

    def _selected(self, index: int, unit: Unit) -> pa.Table:
        wanted = None if self.columns is None else list(dict.fromkeys(self.columns + self.selection.columns()))
        table = self.run.open_row_group(unit, wanted).slice(unit.start, unit.stop - unit.start)
        table = table.filter(pa.array(self.selection.mask(table)))
        if self.shuffle:
            table = table.take(np.random.default_rng([self.seed, index]).permutation(table.num_rows))
        return table if self.columns is None else table.select(self.columns)

    def batches(self, batch_size: int = 1024, start: Position | dict | None = None) -> Iterator[pa.RecordBatch]:
        """Record batches of at most batch_size rows (a batch never spans two units);
        `self.position` is exact after each one."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        position = self._start(start)
        for k, (index, unit) in enumerate(self.units()):
            if k < position.units_done:
                continue
            table = self._selected(index, unit)
            offset = position.rows_done if k == position.units_done else 0
            for lo in range(offset, table.num_rows, batch_size):
                batch = table.slice(lo, batch_size).combine_chunks().to_batches()
                hi = min(lo + batch_size, table.num_rows)
                self.position = Position(k, hi, position.fingerprint)
                yield from batch
            self.position = Position(k + 1, 0, position.fingerprint)

    def documents(self, start: Position | dict | None = None) -> Iterator[dict[str, Any]]:
        """One dict per row; `self.position` is exact after each one."""
        position = self._start(start)
        for batch in self.batches(batch_size=256, start=position):
            after = self.position
            rows = batch.to_pylist()
            base = after.rows_done - len(rows)
            for i, row in enumerate(rows):
                self.position = Position(after.units_done, base + i + 1, after.fingerprint)
                yield row
            self.position = after

    def _start(self, start: Position | dict | None) -> Position:
        if start is None:
            return Position(fingerprint=self.fingerprint())
        start = Position.from_dict(start) if isinstance(start, dict) else start
        if start.fingerprint != self.fingerprint():
            raise ValueError("this position was saved by a reader with another run, selection, seed or sharding; "
                             "resume with the same settings")
        return start
