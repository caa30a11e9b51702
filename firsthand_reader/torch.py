"""A PyTorch IterableDataset over a firsthand run (torch is imported only here).

    dataset = FirsthandIterableDataset("runs/x", Selection(...), columns=["text"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=4)
    for epoch in range(epochs):
        dataset.set_epoch(epoch)          # a new order per epoch (persistent workers too)
        for row in loader: ...

Each DataLoader worker reads its own share (torch tells it its id and the worker count),
and rank and world_size default to torch.distributed's when it is initialised, so every
selected row is yielded exactly once per epoch across ranks and workers. With
with_position=True each item is (row, worker id, position dict): keep the latest position
per worker in the checkpoint and pass them back as start_positions to resume.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from firsthand_reader import Selection, open_run


class FirsthandIterableDataset(IterableDataset):
    def __init__(self, uri: str, selection: Selection | None = None, *, columns: list[str] | None = None,
                 seed: int = 0, shuffle: bool = True, rank: int | None = None, world_size: int | None = None,
                 unit_rows: int | None = None, with_position: bool = False,
                 start_positions: dict[int, dict[str, Any]] | None = None):
        super().__init__()
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        self.world_size = world_size if world_size is not None else (dist.get_world_size() if distributed else 1)
        self.uri, self.selection, self.columns = uri, selection or Selection(), columns
        self.seed, self.epoch, self.shuffle, self.unit_rows = seed, 0, shuffle, unit_rows
        self.with_position, self.start_positions = with_position, dict(start_positions or {})

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for this epoch; saved positions belong to the epoch they were taken in."""
        if epoch != self.epoch:
            self.start_positions = {}
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader = open_run(self.uri).reader(self.selection, columns=self.columns, seed=self.seed + self.epoch,
                                           shuffle=self.shuffle, rank=self.rank, world_size=self.world_size,
                                           worker=worker, num_workers=num_workers, unit_rows=self.unit_rows)
        for row in reader.documents(self.start_positions.get(worker)):
            yield (row, worker, reader.position.to_dict()) if self.with_position else row
