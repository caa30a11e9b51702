"""fastText n-gram classifier: the log-odds that a text is machine-written, from its word n-grams.

A supervised fastText model (Joulin et al. 2017: the average of word and hashed word-bigram
embeddings, then one linear layer) with two labels, `human` and `machine`, trained with a
softmax. The feature is the log-odds log(p_machine / p_human) = (w_machine - w_human) . h,
computed exactly from the averaged embedding h: fastText's own probabilities are floored at
1e-5, which would clip half of the dev texts at +-11.5 and lose their order; the exact
log-odds reach about +-100 on confident texts (the stacker may want to clip or scale them).
A log-odds, not a probability, because the stacker is a logistic regression.

The average leaves out the end-of-line token </s>. Training ends every example with it, so its
embedding learns the training set's class prior (72% machine) and acts as a bias divided by the
text's length: with it, "Hello world." scored +69 and any short human text looked machine-made.
Without it the feature is the mean evidence of the words (dev AUROC 0.9435 against 0.9461 with
it); the stacker's intercept carries the prior.

fastText 0.9.3 (PyPI sdist) needs workarounds, all kept here:
  * Python `predict` on a string builds `np.array(..., copy=False)`, which numpy 2 rejects;
    scoring does not use `predict` (it reads sentence vectors through the binding).
  * Training leaves most of the input matrix uninitialised: `DenseMatrix::uniform` fills only
    `thread`/10 of it and its AlignedVector storage is not zeroed, so with `thread=1` (what
    makes training deterministic) 90% of the embeddings start as heap garbage, which makes
    runs differ and often die with "Encountered NaN". Training runs with glibc's malloc
    perturbation set so that new allocations are zero-filled, which is what fastText 0.9.2's
    std::vector storage gave (see `_zero_filled_allocations`).
  * Loading a truncated model file hangs or reads garbage: `_layout_problem` checks the file
    against the sizes recorded in it first.

Models are loaded from a local path (`NgramDetector.load`) or from bytes
(`NgramDetector.from_bytes`, for models read through Beam FileSystems): fastText can only
open a local file.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import re
import string
import struct
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

# Training folds raw texts as the stack folds them before scoring (detectors.stack): a change
# to this fold means retraining the default model.
from detectors.textnorm import fold_for_detection as fold

CODE_VERSION = "2"            # bump when prepare() or the feature changes; the model's hash follows it
MACHINE, HUMAN = "__label__machine", "__label__human"
MAX_CHARS = 30_000            # ~5x the 99th-percentile training text: bounds the cost of huge documents
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")

# ASCII punctuation becomes its own token ("end." -> "end ."), so words are shared across
# punctuation and n-grams see it. '_' stays, as in \w. One str.replace per character present
# is ~4x faster than a regex with a callback on punctuation-dense text.
_ASCII_PUNCT = tuple((c, f" {c} ") for c in string.punctuation if c != "_")
_OTHER_PUNCT = re.compile(r"[^\w\s\x00-\x7f]")   # curly quotes, dashes, ellipses, CJK punctuation


def prepare(text: str) -> str:
    """One fastText input line from a folded text: newlines to spaces (fastText ends an example
    at a newline), punctuation and symbols split off words, capped at MAX_CHARS, case kept.
    Measured on dev (bench/detector_ngram_sweep.py): the split gained 0.015 AUROC,
    lowercasing lost 0.003."""
    text = text[:MAX_CHARS].replace("\n", " ")
    for char, spaced in _ASCII_PUNCT:
        if char in text:
            text = text.replace(char, spaced)
    if not text.isascii():
        text = _OTHER_PUNCT.sub(_spaced, text)
    return text


def _spaced(match: re.Match) -> str:
    return f" {match.group()} "


def _fasttext():
    try:
        import fasttext
    except ImportError as error:
        raise ImportError("the ngram detector needs fastText: pip install 'fasttext==0.9.3'") from error
    return fasttext


class NgramDetector:
    """Batched scoring with one loaded fastText model; thread-safe, no state between calls."""

    name = "ngram"
    feature_names = ("ngram_machine_logit",)

    def __init__(self, model, sha256: str, path: str = "<bytes>") -> None:
        self._model = model
        self.sha256 = sha256
        self.path = path
        self.version = f"{CODE_VERSION}+{sha256[:12]}"   # a retrained model scores differently
        output = np.array(model.f.getOutputMatrix(), dtype=np.float64)
        labels = list(model.labels)
        self._direction = output[labels.index(MACHINE)] - output[labels.index(HUMAN)]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NgramDetector":
        """Load a model from a local file; raises FileNotFoundError or ValueError naming the path."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ngram model {path!r} does not exist or is not a file; train one with "
                                    f"detectors.ngram.train_ngram_model or point to the shipped default")
        with open(path, "rb") as f:
            data = f.read()
        problem = _layout_problem(data)
        if problem:   # fastText loops forever or reads garbage on a truncated file: check first
            raise ValueError(f"ngram model {path!r} is not a valid fastText model: {problem}; "
                             f"re-copy or retrain it")
        fasttext = _fasttext()
        try:
            model = fasttext.load_model(path)
        except (ValueError, RuntimeError, MemoryError, OSError) as error:
            raise ValueError(f"ngram model {path!r} could not be loaded by fastText ({error}); "
                             f"the file is corrupt or from an incompatible fastText version: retrain it") from None
        labels, args = set(model.labels), model.f.getArgs()
        if labels != {HUMAN, MACHINE}:
            raise ValueError(f"ngram model {path!r} has labels {sorted(labels)}, expected "
                             f"{sorted((HUMAN, MACHINE))}: not a firsthand detector model")
        if args.loss.name != "softmax" or args.qout:
            raise ValueError(f"ngram model {path!r} was trained with loss {args.loss.name}"
                             f"{' and a quantised output matrix' if args.qout else ''}; the detector reads "
                             f"softmax models with a float output matrix (train_ngram_model writes those)")
        return cls(model, hashlib.sha256(data).hexdigest(), path)

    @classmethod
    def from_bytes(cls, data: bytes) -> "NgramDetector":
        """Load from the bytes of a model file (e.g. read through apache_beam FileSystems)."""
        with tempfile.TemporaryDirectory(prefix="firsthand-ngram-") as tmp:
            path = os.path.join(tmp, "model.ftz")
            with open(path, "wb") as f:
                f.write(data)
            detector = cls.load(path)   # fastText reads the whole file at load; it may go now
        detector.path = "<bytes>"
        return detector

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 1) float32 log-odds of `machine`, for texts folded by the stack."""
        return self.logits_prepared([prepare(t) for t in texts])[:, None]

    def logits_prepared(self, lines: Sequence[str]) -> np.ndarray:
        """float32 log-odds for lines that already went through `prepare` (or a variant under study).

        A line without a token has no evidence either way: 0."""
        f = self._model.f
        vector = _fasttext_vector(len(self._direction))   # one per call: calls may run in threads
        hidden = np.zeros((len(lines), len(self._direction)), dtype=np.float32)
        for i, line in enumerate(lines):
            if line.isspace() or not line:
                continue
            try:   # no "\n", so no </s> token: see the class docstring
                f.getSentenceVector(vector, line)
            except (TypeError, UnicodeError):   # lone surrogates cannot become std::string; bytes can
                f.getSentenceVector(vector, line.encode("utf-8", "replace"))
            hidden[i] = vector
        # a row-wise sum, not BLAS: gemv's result for a row depends on its position in the batch
        return (hidden * self._direction).sum(axis=1).astype(np.float32)


def _fasttext_vector(dim: int):
    import fasttext_pybind
    return fasttext_pybind.Vector(dim)


def _layout_problem(data: bytes) -> str | None:
    """Walk a fastText 0.9 model's layout (FastText::saveModel) and check that every size
    recorded in it fits the file; None when the file is whole, else what is wrong."""
    if data[:4] != _FASTTEXT_MAGIC:
        return "wrong magic number (another kind of file)"
    try:
        version, = struct.unpack_from("<i", data, 4)
        if version not in (11, 12):
            return f"unsupported fastText format version {version}"
        pos = 8 + 12 * 4 + 8                                  # Args: 12 int32 and a double
        size, nwords, nlabels, _, prune_size = struct.unpack_from("<iiiqq", data, pos)
        pos += 28
        if size < 0 or nwords < 0 or nlabels < 0 or size != nwords + nlabels:
            return f"inconsistent dictionary header ({size} entries, {nwords} words, {nlabels} labels)"
        for _ in range(size):                                 # word, NUL, int64 count, int8 type
            end = data.find(b"\0", pos)
            if end < 0:
                return "truncated inside the dictionary"
            pos = end + 1 + 9
        pos += 8 * max(prune_size, 0)
        for _ in range(2):                                    # input, then output matrix
            quantised = data[pos]
            pos += 1
            pos = _quant_matrix_end(data, pos) if quantised else _dense_matrix_end(data, pos)
    except (struct.error, IndexError):
        return "truncated"
    if pos != len(data):
        return f"{len(data) - pos} unexpected bytes at the end" if pos < len(data) else "truncated"
    return None


def _dense_matrix_end(data: bytes, pos: int) -> int:
    m, n = struct.unpack_from("<qq", data, pos)
    if m < 0 or n < 0:
        raise struct.error("negative matrix shape")
    return pos + 16 + 4 * m * n


def _quant_matrix_end(data: bytes, pos: int) -> int:
    qnorm = data[pos]
    m, _, codesize = struct.unpack_from("<qqi", data, pos + 1)
    if m < 0 or codesize < 0:
        raise struct.error("negative matrix shape")
    pos = _product_quantizer_end(data, pos + 21 + codesize)
    return _product_quantizer_end(data, pos + m) if qnorm else pos


def _product_quantizer_end(data: bytes, pos: int) -> int:
    dim, = struct.unpack_from("<i", data, pos)               # then nsubq, dsub, lastdsub
    if dim < 0:
        raise struct.error("negative quantiser dimension")
    return pos + 16 + 4 * 256 * dim                           # 256 centroids per sub-quantiser


@dataclass(frozen=True)
class NgramParams:
    """Training and quantisation settings; the defaults are bench/detector_ngram_sweep.py's pick."""
    word_ngrams: int = 2
    dim: int = 32
    epoch: int = 10
    lr: float = 0.5
    min_count: int = 2
    bucket: int = 2_000_000
    minn: int = 0                  # character n-grams off: 4x slower to score and lost AUROC
    maxn: int = 0
    seed: int = 1
    cutoff: int = 100_000          # quantisation keeps the 100k rows with the largest norms: 2.6 MB
    retrain: bool = False          # retraining after the cutoff is more training: it lost on dev and attacks
    dsub: int = 2                  # 1 byte per 2 dimensions; dsub 1 measured no better
    qnorm: bool = False

    def fasttext_args(self) -> dict:
        return dict(wordNgrams=self.word_ngrams, dim=self.dim, epoch=self.epoch, lr=self.lr,
                    minCount=self.min_count, loss="softmax", bucket=self.bucket, minn=self.minn,
                    maxn=self.maxn, seed=self.seed)


_LABEL_OF = {"human": HUMAN, "machine": MACHINE, 0: HUMAN, 1: MACHINE}


def train_ngram_model(texts: Sequence[str], labels: Sequence[str | int], out_path: str | os.PathLike,
                      params: NgramParams = NgramParams(), *, prepared: bool = False) -> Path:
    """Train, quantise and write a model (.ftz); deterministic for the same inputs and params.

    texts are raw (they are folded as the stack folds them, then prepared) unless `prepared`,
    in which case they are fastText lines already. labels are "human"/"machine" or 0/1.
    One training thread and a fixed seed make fastText deterministic; the examples are
    shuffled with that seed, since fastText reads them in order.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    try:
        tags = [_LABEL_OF[label] for label in labels]
    except KeyError as error:
        raise ValueError(f"label {error.args[0]!r} is neither 'human'/'machine' nor 0/1") from None
    if set(tags) != {HUMAN, MACHINE}:
        raise ValueError("training needs both human and machine examples")
    lines = texts if prepared else [prepare(fold(t)) for t in texts]
    order = np.random.default_rng(params.seed).permutation(len(lines))
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="firsthand-ngram-train-") as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8", errors="replace") as f:
            f.writelines(f"{tags[i]} {lines[i]}\n" for i in order)
        try:
            with _zero_filled_allocations():   # quantising copies rows into new storage: not needed there
                model = _fasttext().train_supervised(input=train_file, thread=1, verbose=0,
                                                     **params.fasttext_args())
            model.quantize(input=train_file, qout=False, cutoff=params.cutoff, retrain=params.retrain,
                           epoch=params.epoch, lr=params.lr, thread=1, dsub=params.dsub, qnorm=params.qnorm)
        except RuntimeError as error:   # "Encountered NaN.": the training diverged
            raise ValueError(f"fastText training failed ({error}); lower lr (was {params.lr})") from None
        partial = out_path.with_name(out_path.name + ".partial")
        model.save_model(str(partial))
        os.replace(partial, out_path)   # never a half-written model at out_path
    return out_path


@contextlib.contextmanager
def _zero_filled_allocations() -> Iterator[None]:
    """glibc's M_PERTURB with byte 0xFF fills every new heap block with 0xFF ^ 0xFF = 0, so
    fastText's unfilled matrix rows start at zero instead of garbage. Costs a memset per
    allocation, only while training."""
    mallopt = _glibc_mallopt()
    if mallopt is None:
        warnings.warn("not glibc: fastText 0.9.3 training may start from uninitialised memory "
                      "and be non-deterministic", RuntimeWarning, stacklevel=3)
        yield
        return
    m_perturb = -6
    mallopt(m_perturb, 0xFF)
    try:
        yield
    finally:
        mallopt(m_perturb, 0)


def _glibc_mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    gnu_get_libc_version = getattr(libc, "gnu_get_libc_version", None)
    return mallopt if gnu_get_libc_version is not None else None   # musl has mallopt as a no-op
