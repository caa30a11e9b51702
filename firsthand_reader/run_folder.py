"""A finished firsthand run folder, as a training job should see it: only the files its
manifest lists, checked against the manifest before any row is read."""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import SCHEMA_VERSION

MANIFEST = "manifest.json"
FAILED_MANIFEST = "manifest.failed.json"
DOCUMENT_TABLES = ("kept", "rejected", "documents")


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
            failed = self.fs.get_file_info(posixpath.join(self.root, FAILED_MANIFEST)).type != pafs.FileType.NotFound
            raise RunFolderError(
                f"{self.uri} has no {MANIFEST}: "
                + (f"the run failed its accounting (see {FAILED_MANIFEST}); do not train on it" if failed
                   else "the run has not finished (or this is not a firsthand run folder); its files are not trusted"))
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

    def files(self, tables: tuple[str, ...]) -> list[dict[str, Any]]:
        """The manifest's entries ({path, rows, bytes}) for these tables, in manifest order."""
        outputs = self.manifest["outputs"]
        unknown = [t for t in tables if t not in outputs and t not in DOCUMENT_TABLES + ("errors",)]
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; this run has {sorted(outputs)}")
        return [entry for t in tables for entry in outputs.get(t, [])]

    def units(self, tables: tuple[str, ...], unit_rows: int) -> list[Unit]:
        """Every listed file cut into row ranges of at most unit_rows, from Parquet footers only.
        A file missing, or holding another number of rows than the manifest says, is refused."""
        units = []
        for entry in self.files(tables):
            path = posixpath.join(self.root, entry["path"])
            try:
                meta = pq.ParquetFile(self.fs.open_input_file(path)).metadata
            except (FileNotFoundError, OSError) as e:
                raise RunFolderError(f"{entry['path']} is listed in the manifest but cannot be read: {e}") from None
            if meta.num_rows != entry["rows"]:
                raise RunFolderError(f"{entry['path']} holds {meta.num_rows} rows, the manifest says {entry['rows']}: "
                                     "the folder was changed after the run; do not train on it")
            for rg in range(meta.num_row_groups):
                n = meta.row_group(rg).num_rows
                units.extend(Unit(entry["path"], rg, s, min(s + unit_rows, n)) for s in range(0, n, unit_rows))
        return units

    def open_row_group(self, unit: Unit, columns: list[str] | None):
        path = posixpath.join(self.root, unit.path)
        return pq.ParquetFile(self.fs.open_input_file(path)).read_row_group(unit.row_group, columns=columns)
