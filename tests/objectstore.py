"""`memobj://`: an object store for tests, registered with Beam's FileSystems.

It behaves like GCS or S3 rather than a disk: flat keys with no folders, objects that
appear whole when their writer closes, rename as copy-then-delete, and no local path
anywhere (the bytes live in this process's memory). A pipeline that runs against it
reads and writes only through Beam's FileSystems API, as it must on Dataflow or Flink.
In-process only: use it with FnApiRunner's in_memory mode.
"""
from __future__ import annotations

import io
import threading
import time
from typing import BinaryIO, Iterator

from apache_beam.io.filesystem import (BeamIOError, CompressedFile, CompressionTypes, FileMetadata,
                                       FileSystem)

SCHEME = "memobj"
_objects: dict[str, tuple[bytes, float]] = {}
_lock = threading.Lock()


def clear() -> None:
    with _lock:
        _objects.clear()


def keys() -> list[str]:
    with _lock:
        return sorted(_objects)


def put(path: str, data: bytes) -> None:
    with _lock:
        _objects[path] = (data, time.time())


def get(path: str) -> bytes:
    with _lock:
        return _objects[path][0]


class _Upload(io.BytesIO):
    """Bytes become an object only when the writer closes, as with a real upload."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self) -> None:
        if not self.closed:
            put(self._path, self.getvalue())
        super().close()


class MemoryObjectStore(FileSystem):
    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        pass  # object stores have no folders

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str) -> Iterator[FileMetadata]:
        with _lock:
            found = [(k, len(v[0]), v[1]) for k, v in _objects.items() if k.startswith(dir_or_prefix)]
        for key, size, updated in sorted(found):
            yield FileMetadata(key, size, updated)

    def create(self, path: str, mime_type: str = "application/octet-stream",
               compression_type: str = CompressionTypes.AUTO) -> BinaryIO:
        compression_type = FileSystem._get_compression_type(path, compression_type)
        raw = _Upload(path)
        return raw if compression_type == CompressionTypes.UNCOMPRESSED else CompressedFile(raw, compression_type)

    def open(self, path: str, mime_type: str = "application/octet-stream",
             compression_type: str = CompressionTypes.AUTO) -> BinaryIO:
        try:
            raw = io.BytesIO(get(path))
        except KeyError:
            raise BeamIOError(f"no such object: {path}") from None
        compression_type = FileSystem._get_compression_type(path, compression_type)
        return raw if compression_type == CompressionTypes.UNCOMPRESSED else CompressedFile(raw, compression_type)

    def copy(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        for source, destination in zip(source_file_names, destination_file_names):
            put(destination, get(source))

    def rename(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        self.copy(source_file_names, destination_file_names)
        self.delete(source_file_names)

    def exists(self, path: str) -> bool:
        with _lock:
            return path in _objects or any(k.startswith(path.rstrip("/") + "/") for k in _objects)

    def size(self, path: str) -> int:
        return len(get(path))

    def last_updated(self, path: str) -> float:
        with _lock:
            return _objects[path][1]

    def checksum(self, path: str) -> str:
        return str(hash(get(path)))

    def metadata(self, path: str) -> FileMetadata:
        with _lock:
            data, updated = _objects[path]
        return FileMetadata(path, len(data), updated)

    def delete(self, paths: list[str]) -> None:
        """An object, or every object under a prefix (how Beam's GCS filesystem deletes a 'folder')."""
        with _lock:
            for path in paths:
                doomed = [k for k in _objects if k == path or k.startswith(path.rstrip("/") + "/")]
                if not doomed:
                    raise BeamIOError("Delete operation failed", {path: FileNotFoundError(path)})
                for k in doomed:
                    del _objects[k]
