"""The detector stack: fold once, run every detector, combine into one calibrated probability.

A trained stack is a folder of plain files, never a pickle:
  stack.json   feature names, detector versions, the logistic stacker, the isotonic
               calibration, the date prior, and the sha256 of every other file
  ngram.ftz    the quantised fastText model
The stacker sees the fastText score as one feature among the others; it is trained on
out-of-fold fastText scores, so it learns how much to trust fastText on unseen text.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from detectors.calibration import IsotonicCalibrator, LogisticModel, fit_isotonic, fit_logistic
from detectors.textnorm import fold_for_detection

FORMAT = 1
STACK_FILE = "stack.json"
NGRAM_FILE = "ngram.ftz"
# ChatGPT's public release: before it, machine-written web text was rare.
DATE_PRIOR_CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.timezone.utc)
DEFAULT_DATE_PRIOR_ODDS = 0.05
# The detectors are trained on English: on Arabic, Bulgarian, Chinese, Indonesian, Russian and
# Urdu news the fastText score ranks backwards (AUROC 0.39). English prose has 15-55% function
# words (1st percentile over every dev domain: 0.20); these six languages have ~0. Texts of at
# least GATE_MIN_CHARS below the floor get no probability rather than a wrong one.
ENGLISH_FUNCTION_WORD_FLOOR = 0.10
GATE_MIN_CHARS = 200
# Non-Latin scripts are caught at any length: extra UTF-8 bytes per character (Cyrillic adds 1,
# CJK 2; English with curly quotes or the odd emoji stays far below).
NON_LATIN_EXTRA_BYTES = 0.3
GATE_MIN_CHARS_SCRIPT = 20
_GATE_FEATURE = "style.function_word_rate"


class ModelFileError(ValueError):
    """A stack folder that is missing, incomplete, altered or of an unknown format."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def apply_date_prior(probabilities: np.ndarray, dates: Sequence[dt.datetime | None],
                     odds_ratio: float, cutoff: dt.datetime = DATE_PRIOR_CUTOFF) -> np.ndarray:
    """Bayes with a prior: a text first seen before `cutoff` has its odds of being
    machine-written multiplied by `odds_ratio` (1.0 switches the prior off)."""
    before = np.array([d is not None and d < cutoff for d in dates], dtype=bool)
    if odds_ratio == 1.0 or not before.any():
        return probabilities
    p = probabilities.astype(np.float64)
    scaled = p * odds_ratio / (p * odds_ratio + (1.0 - p))
    return np.where(before, scaled, p).astype(np.float32)


@dataclass(frozen=True)
class Stacker:
    """Detector features -> calibrated P(machine-written).

    Uses the named features `inputs` of the full feature vector, each clipped to the range
    seen in training (robust to outliers such as fastText log-odds of +-100), then a logistic
    regression, then an isotonic map fitted on out-of-fold decisions."""
    inputs: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    logistic: LogisticModel
    calibrator: IsotonicCalibrator

    def design(self, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
        try:
            columns = [list(names).index(name) for name in self.inputs]
        except ValueError:
            missing = sorted(set(self.inputs) - set(names))
            raise ModelFileError(f"the stacker needs features {missing} that no loaded detector "
                                 f"provides; the stack folder and the detectors do not match") from None
        return np.clip(np.asarray(features, np.float64)[:, columns], self.low, self.high)

    def decision(self, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
        return self.logistic.decision(self.design(features, names))

    def probability(self, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
        return self.calibrator(self.decision(features, names)).astype(np.float32)

    def to_json(self) -> dict:
        return {"inputs": list(self.inputs), "low": self.low.tolist(), "high": self.high.tolist(),
                "logistic": self.logistic.to_json(), "isotonic": self.calibrator.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "Stacker":
        return cls(tuple(data["inputs"]), np.asarray(data["low"], np.float64),
                   np.asarray(data["high"], np.float64), LogisticModel.from_json(data["logistic"]),
                   IsotonicCalibrator.from_json(data["isotonic"]))


@dataclass
class StackScores:
    probability: np.ndarray                 # (n,) calibrated P(machine-written), date prior applied
    features: np.ndarray                    # (n, k) every detector's features, named by feature_names
    feature_names: tuple[str, ...]
    residue: list[str | None]               # the first chatbot-residue phrase found, if any
    supported: np.ndarray                   # (n,) bool: False where the text is not English enough


class DetectorStack:
    def __init__(self, detectors: list, stacker: Stacker, date_prior_odds: float = DEFAULT_DATE_PRIOR_ODDS):
        self.detectors = detectors
        self.stacker = stacker
        self.date_prior_odds = date_prior_odds
        self.feature_names = tuple(f"{d.name}.{f}" for d in detectors for f in d.feature_names)
        self.versions = {d.name: d.version for d in detectors}
        self.digest = "unsaved"   # sha256 of stack.json, set by load_stack
        self.about: dict = {}
        self.stacker.design(np.zeros((0, len(self.feature_names))), self.feature_names)  # fail early

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str], list[str | None]]:
        """Every detector's features, the folded texts, and each text's chatbot-residue phrase
        (a detector with `matches` searches each text once, for its feature and its evidence)."""
        folded = [fold_for_detection(t) for t in texts]
        matches: list[str | None] = [None] * len(texts)
        columns = []
        for d in self.detectors:
            if hasattr(d, "matches"):
                matches = d.matches(folded)
                columns.append(d.features_of(matches))
            else:
                columns.append(d.features(folded))
        features = np.concatenate(columns, axis=1) if columns else np.zeros((len(texts), 0), np.float32)
        return features, folded, matches

    def score(self, texts: Sequence[str], dates: Sequence[dt.datetime | None] | None = None) -> StackScores:
        features, folded, matches = self.features(texts)
        probability = self.stacker.probability(features, self.feature_names)
        if dates is not None:
            probability = apply_date_prior(probability, dates, self.date_prior_odds)
        supported = np.ones(len(texts), dtype=bool)
        lengths = np.fromiter(map(len, folded), dtype=np.int64, count=len(folded))
        if _GATE_FEATURE in self.feature_names:
            rate = features[:, self.feature_names.index(_GATE_FEATURE)]
            supported = ~((rate < ENGLISH_FUNCTION_WORD_FLOOR) & (lengths >= GATE_MIN_CHARS))
        extra = np.fromiter((len(t.encode("utf-8", "surrogatepass")) for t in folded), dtype=np.int64,
                            count=len(folded)) - lengths
        supported &= ~((extra > NON_LATIN_EXTRA_BYTES * lengths) & (lengths >= GATE_MIN_CHARS_SCRIPT))
        return StackScores(probability, features, self.feature_names, matches, supported)

    @property
    def version(self) -> str:
        """What scored a row: the stack file's digest and every detector's version."""
        return f"stack={self.digest[:12]};" + ";".join(f"{n}={v}" for n, v in self.versions.items())


def build_detectors(ngram_model_bytes: bytes | None) -> list:
    """The default detector set, in the stack's feature order; the ngram detector only when
    a model is given."""
    from detectors.lexicon import LexiconDetector
    from detectors.residue import ResidueDetector
    from detectors.style import StyleDetector
    detectors: list = [ResidueDetector(), LexiconDetector(), StyleDetector()]
    if ngram_model_bytes is not None:
        from detectors.ngram import NgramDetector
        detectors.insert(0, NgramDetector.from_bytes(ngram_model_bytes))
    return detectors


def stack_document(stacker: Stacker, detectors: list, files: dict[str, bytes], about: dict) -> dict:
    """The stack.json of a trained stack: `files` are the other files of the folder, by name."""
    return {"format": FORMAT, "stacker": stacker.to_json(),
            "detectors": {d.name: d.version for d in detectors},
            "feature_names": [f"{d.name}.{f}" for d in detectors for f in d.feature_names],
            "date_prior": {"cutoff": DATE_PRIOR_CUTOFF.date().isoformat(), "odds_ratio": DEFAULT_DATE_PRIOR_ODDS},
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
            "about": about}


def load_stack(folder: str, read_bytes=None, date_prior_odds: float | None = None) -> DetectorStack:
    """Load a trained stack folder. `read_bytes(path) -> bytes` reads a file (default: local
    files; the pipeline passes one that reads through Beam FileSystems). Every file is checked
    against the sha256 recorded in stack.json before it is used."""
    def local(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()
    read_bytes = read_bytes or local
    join = lambda name: folder.rstrip("/") + "/" + name   # noqa: E731  (works for URLs too)
    try:
        raw = read_bytes(join(STACK_FILE))
        document = json.loads(raw)
    except (OSError, FileNotFoundError) as error:
        raise ModelFileError(f"detector model folder {folder!r} has no readable {STACK_FILE} ({error}); "
                             f"point --detector-model at a folder written by `firsthand train-detector`") from None
    except ValueError as error:
        raise ModelFileError(f"{join(STACK_FILE)} is not valid JSON ({error}): re-copy or retrain it") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{join(STACK_FILE)} has format {document.get('format') if isinstance(document, dict) else None!r}, "
                             f"this firsthand reads format {FORMAT}: retrain with this version")
    files: dict[str, bytes] = {}
    for name, expected in document.get("files", {}).items():
        try:
            data = read_bytes(join(name))
        except OSError as error:
            raise ModelFileError(f"detector model file {join(name)!r} cannot be read ({error})") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelFileError(f"detector model file {join(name)!r} has sha256 {actual[:16]}..., but "
                                 f"{STACK_FILE} records {expected[:16]}...: the file was altered or damaged; "
                                 f"re-copy the whole folder")
        files[name] = data
    try:
        detectors = build_detectors(files.get(NGRAM_FILE))
    except ValueError as error:
        raise ModelFileError(str(error)) from None
    stacker = Stacker.from_json(document["stacker"])
    odds = document["date_prior"]["odds_ratio"] if date_prior_odds is None else date_prior_odds
    stack = DetectorStack(detectors, stacker, odds)
    recorded = document.get("detectors", {})
    if recorded != stack.versions:
        raise ModelFileError(f"{join(STACK_FILE)} was trained with detector versions {recorded}, "
                             f"this firsthand has {stack.versions}: retrain with `firsthand train-detector`")
    stack.about = document.get("about", {})
    stack.digest = hashlib.sha256(raw).hexdigest()
    return stack


def default_stack_folder() -> str:
    """The stack shipped inside the package (detectors/data/model)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model")
