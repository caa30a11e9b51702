"""Read a firsthand run in a training job: pyarrow only, no Beam.

    from firsthand_reader import open_run, Selection
    run = open_run("gs://bucket/runs/cc-2026-40")
    reader = run.reader(Selection(max_synthetic_probability=0.5, representatives_only=True),
                        columns=["id", "text", "sample_weight"], seed=epoch, rank=rank, world_size=world,
                        worker=worker_id, num_workers=num_workers)
    for batch in reader.batches(1024): ...
    state = reader.position.to_dict()        # save with the checkpoint; resume with start=state

Only files listed in the run's manifest are read, and only when the manifest says the run
is complete and each file holds the rows the manifest counted.
"""
from __future__ import annotations

from typing import Any

from firsthand_reader.run_folder import RunFolder, RunFolderError, Unit
from firsthand_reader.selection import Selection
from firsthand_reader.shards import Position, ShardReader

__all__ = ["open_run", "Run", "RunFolderError", "Selection", "ShardReader", "Position", "Unit"]


class Run(RunFolder):
    def reader(self, selection: Selection | None = None, **settings: Any) -> ShardReader:
        """A ShardReader over this run; settings: columns, seed, shuffle, rank, world_size,
        worker, num_workers, unit_rows."""
        return ShardReader(self, selection or Selection(), **settings)


def open_run(uri: str) -> Run:
    """Open a finished run folder (local path or a URI pyarrow reads: s3://, gs://, ...)."""
    return Run(uri)
