"""A finished firsthand run folder, as a training job should see it: only the files its
manifest lists, checked against the manifest before any row is read."""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import DOCUMENT_TABLES, DOCUMENTS, FAILED_MANIFEST, KEPT, MANIFEST, SCHEMA_VERSION, UNCHECKED_MANIFEST


def missing_manifest_reason(present: Callable[[str], bool]) -> str:
    """Why a run folder has no manifest.json, from which other manifest file it holds."""
    if present(FAILED_MANIFEST):
        return f"the run failed its accounting (see {FAILED_MANIFEST}); do not train on it"
    if present(UNCHECKED_MANIFEST):
        return (f"the pipeline finished but the driver stopped before checking Beam's metrics against "
                f"{UNCHECKED_MANIFEST}; rerun with --overwrite")
    return "the run has not finished (or this is not a firsthand run folder); its files are not trusted"


class RunFolderError(RuntimeError):
    """The folder is not a complete firsthand run this reader can trust."""


@dataclass(frozen=True)
class Unit:
    """A slice of one row group: the smallest piece of work handed to one reader."""
    path: str           # relative to the run folder, as the manifest lists it
    row_group: int
    start: int          # first row within the row group
    stop: int


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), posixpath.abspath(uri)


class RunFolder:
    """Opens `uri` (a local path, or any URI pyarrow understands: s3://, gs://, ...)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.fs, self.root = _filesystem(uri)
        self.manifest = self._read_manifest()
        self._check_schema_version()

    def _read_manifest(self) -> dict[str, Any]:
        path = posixpath.join(self.root, MANIFEST)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            why = missing_manifest_reason(
                lambda name: self.fs.get_file_info(posixpath.join(self.root, name)).type != pafs.FileType.NotFound)
            raise RunFolderError(f"{self.uri} has no {MANIFEST}: {why}")
        with self.fs.open_input_stream(path) as f:
            manifest = json.loads(f.read())
        if manifest.get("status") != "complete":
            raise RunFolderError(f"{self.uri}: manifest status is {manifest.get('status')!r}, not 'complete'")
        return manifest

    def _check_schema_version(self) -> None:
        written = str(self.manifest.get("schema_version", ""))
        if written.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise RunFolderError(f"{self.uri} was written with schema {written}; this reader reads schema "
                                 f"{SCHEMA_VERSION.split('.')[0]}.x: install the firsthand version that wrote it")

    def document_tables(self, wanted: tuple[str, ...] | None) -> list[str]:
        """The document tables to read: `wanted`, or by default what the run kept (kept/ in
        filter mode, documents/ in tag mode). A table this run did not write is refused."""
        outputs = self.manifest["outputs"]
        written = [t for t in DOCUMENT_TABLES if t in outputs]
        if wanted is None:
            return [DOCUMENTS] if DOCUMENTS in written else [KEPT]
        refused = [t for t in wanted if t not in written]
        if refused:
            hint = f" (a tag-mode run writes {DOCUMENTS}/)" if DOCUMENTS in written else ""
            raise ValueError(f"table(s) {refused} are not document tables of this run; it has {written}{hint}")
        return list(wanted)

    def units(self, tables: list[str], unit_rows: int | None) -> list[Unit]:
        """Every listed file of these tables cut into units, from Parquet footers only: one row
        group each, or row ranges of at most unit_rows. A file missing, or holding another
        number of rows or bytes than the manifest says, is refused."""
        units = []
        for entry in (e for t in tables for e in self.manifest["outputs"][t]):
            path = posixpath.join(self.root, entry["path"])
            info = self.fs.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                raise RunFolderError(f"{entry['path']} is listed in the manifest but cannot be read: it is missing")
            if entry.get("bytes") is not None and info.size != entry["bytes"]:
                raise RunFolderError(f"{entry['path']} has {info.size} bytes, the manifest says {entry['bytes']}: "
                                     "the folder was changed after the run; do not train on it")
            meta = pq.ParquetFile(self.fs.open_input_file(path)).metadata
            if meta.num_rows != entry["rows"]:
                raise RunFolderError(f"{entry['path']} holds {meta.num_rows} rows, the manifest says {entry['rows']}: "
                                     "the folder was changed after the run; do not train on it")
            for rg in range(meta.num_row_groups):
                n = meta.row_group(rg).num_rows
                step = n if unit_rows is None else unit_rows
                units.extend(Unit(entry["path"], rg, s, min(s + step, n)) for s in range(0, n, max(step, 1)))
        return units

    def open_row_group(self, unit: Unit, columns: list[str] | None) -> pa.Table:
        path = posixpath.join(self.root, unit.path)
        return pq.ParquetFile(self.fs.open_input_file(path)).read_row_group(unit.row_group, columns=columns)
