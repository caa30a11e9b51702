"""Labelled texts for training and evaluating detectors: JSON Lines with `text` and `label`.

One object per line: {"text": ..., "label": "human" | "machine"} and, optionally, `dataset`,
`domain` and `generator` (evaluation reports per value; missing ones read as "unknown").
Files may be plain, gzip or zstd (told by their first bytes). A bad line (not JSON, not an object, no text,
an unknown label) never stops the read: it is counted and described in `problems`.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

# Beam-free: the pipeline's decompression, which notices a file cut mid-stream (zstandard's
# own stream reader ends quietly there).
from pipeline.formats.compression import open_decompressed

LABELS = {"human": 0, "machine": 1}
GROUP_FIELDS = ("dataset", "domain", "generator")
MAX_PROBLEMS_KEPT = 20   # problems past this many are counted, not described


@dataclass
class LabelledTexts:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)   # 1 = machine
    dataset: list[str] = field(default_factory=list)
    domain: list[str] = field(default_factory=list)
    generator: list[str] = field(default_factory=list)
    read: int = 0                                      # lines seen, good and bad
    bad: int = 0
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS_KEPT, "file:line: why"
    licenses: dict[str, set] = field(default_factory=dict)  # dataset -> the `license` values seen

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int8)

    def subset(self, mask: np.ndarray) -> "LabelledTexts":
        index = np.flatnonzero(mask)
        pick = lambda values: [values[i] for i in index]   # noqa: E731
        return LabelledTexts(pick(self.texts), pick(self.labels), pick(self.dataset), pick(self.domain),
                             pick(self.generator), read=len(index))

    def extend(self, other: "LabelledTexts") -> None:
        """Append `other`'s rows (e.g. the human rows of another file)."""
        for name in ("texts", "labels") + GROUP_FIELDS:
            getattr(self, name).extend(getattr(other, name))

    def column(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name), dtype=object)


class DamagedFile(ValueError):
    pass


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """Lines of a plain, gzip or zstd file (told by its first bytes)."""
    with open(path, "rb") as raw:
        stream, decoder = open_decompressed(raw)
        yield from enumerate(io.TextIOWrapper(stream, encoding="utf-8", errors="replace"), start=1)
        if decoder is not None and decoder.truncated:
            raise DamagedFile("the compressed stream is cut short")


def read_labelled(paths: Sequence[str], limit: int | None = None, default_label: str | None = None) -> LabelledTexts:
    """Read every good row of `paths` (at most `limit` in all); raises FileNotFoundError for a
    missing file and ValueError for a damaged compressed stream, both naming the file. Rows
    without a `label` take `default_label` where one is given (e.g. "human" for files of
    human text only)."""
    out = LabelledTexts()
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"labelled data {path!r} does not exist or is not a file")
        try:
            for number, line in _lines(path):
                if limit is not None and len(out) >= limit:
                    return out
                out.read += 1
                problem = _add(out, line, default_label)
                if problem:
                    out.bad += 1
                    if len(out.problems) < MAX_PROBLEMS_KEPT:
                        out.problems.append(f"{path}:{number}: {problem}")
        except (DamagedFile, OSError, EOFError, ValueError) as error:
            raise ValueError(f"labelled data {path!r} is damaged after {out.read} lines ({error}); "
                             f"re-copy it or drop it from --data") from None
    return out


def _add(out: LabelledTexts, line: str, default_label: str | None = None) -> str | None:
    if not line.strip():
        return "empty line"
    try:
        row = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    text, label = row.get("text"), row.get("label", default_label)
    if not isinstance(text, str) or not text.strip():
        return "no text (missing, empty or not a string)"
    if label not in LABELS:
        return f"label {label!r} is neither 'human' nor 'machine'"
    out.texts.append(text)
    out.labels.append(LABELS[label])
    for name in GROUP_FIELDS:
        value = row.get(name)
        getattr(out, name).append(str(value) if value not in (None, "") else "unknown")
    if isinstance(row.get("license"), str):
        out.licenses.setdefault(out.dataset[-1], set()).add(row["license"])
    return None
