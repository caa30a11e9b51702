"""Which rows a training job takes, by provenance: vectorised pyarrow filters, no Python
loop over rows."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Selection:
    """Rows to read. Every condition must hold; the defaults take every document the run kept."""
    tables: tuple[str, ...] | None = None           # None: kept/ (filter mode) or documents/ (tag mode)
    max_synthetic_probability: float | None = None  # rows above it are dropped; unscored rows stay
    require_probability: bool = False               # also drop rows the detectors did not score
    representatives_only: bool = False              # one document per duplicate cluster
    exclude_flags: tuple[str, ...] = ()             # drop rows carrying any of these flags
    sources: tuple[str, ...] = ()                   # fnmatch patterns on source_file; empty: all

    def __post_init__(self) -> None:
        for name in ("tables", "exclude_flags", "sources"):   # a bare string would be read letter by letter
            value = getattr(self, name)
            if isinstance(value, str) or not (value is None or isinstance(value, (tuple, list))):
                raise TypeError(f"Selection.{name} takes a tuple of strings, got {value!r}")
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        p = self.max_synthetic_probability
        if p is not None and not 0.0 <= p <= 1.0:
            raise ValueError(f"max_synthetic_probability must be in [0, 1], got {p}")

    def columns(self) -> list[str]:
        """The columns these conditions read."""
        needed = []
        if self.max_synthetic_probability is not None or self.require_probability:
            needed.append("synthetic_probability")
        if self.representatives_only:
            needed.append("dup_is_representative")
        if self.exclude_flags:
            needed.append("flags")
        if self.sources:
            needed.append("source_file")
        return needed

    def mask(self, table: pa.Table) -> np.ndarray:
        """Boolean numpy mask of the rows to keep."""
        keep = np.ones(table.num_rows, dtype=bool)
        if self.max_synthetic_probability is not None or self.require_probability:
            p = table["synthetic_probability"]
            present = pc.is_valid(p).to_numpy(zero_copy_only=False)
            if self.require_probability:
                keep &= present
            if self.max_synthetic_probability is not None:
                at_most = pc.fill_null(pc.less_equal(p, self.max_synthetic_probability), True)
                keep &= at_most.to_numpy(zero_copy_only=False)
        if self.representatives_only:
            keep &= table["dup_is_representative"].to_numpy(zero_copy_only=False)
        if self.exclude_flags:
            flags = table["flags"].combine_chunks()
            hit = pc.is_in(pc.list_flatten(flags), value_set=pa.array(self.exclude_flags)).to_numpy(
                zero_copy_only=False)
            parents = pc.list_parent_indices(flags).to_numpy(zero_copy_only=False)
            keep[np.unique(parents[hit])] = False
        if self.sources:
            files = table["source_file"]
            wanted = [f for f in pc.unique(files).to_pylist()
                      if any(fnmatch.fnmatchcase(f, pattern) for pattern in self.sources)]
            keep &= pc.is_in(files, value_set=pa.array(wanted, pa.string())).to_numpy(zero_copy_only=False)
        return keep
