"""A PyTorch IterableDataset over a firsthand run (torch is imported only here).

    dataset = FirsthandIterableDataset("runs/x", Selection(...), columns=["text"], seed=epoch,
                                       rank=dist.get_rank(), world_size=dist.get_world_size())
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=4)

Each DataLoader worker reads its own share (torch tells it its id and the worker count),
so every selected row is yielded exactly once per epoch across ranks and workers.
"""
from __future__ import annotations

from typing import Any, Iterator

from torch.utils.data import IterableDataset, get_worker_info

from firsthand_reader import Selection, open_run


class FirsthandIterableDataset(IterableDataset):
    def __init__(self, uri: str, selection: Selection | None = None, *, columns: list[str] | None = None,
                 seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1, unit_rows: int = 1024):
        super().__init__()
        self.uri, self.selection, self.columns = uri, selection or Selection(), columns
        self.seed, self.shuffle, self.rank, self.world_size, self.unit_rows = seed, shuffle, rank, world_size, unit_rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader = open_run(self.uri).reader(self.selection, columns=self.columns, seed=self.seed,
                                           shuffle=self.shuffle, rank=self.rank, world_size=self.world_size,
                                           worker=worker, num_workers=num_workers, unit_rows=self.unit_rows)
        yield from reader.documents()
