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
# The reject threshold of a stack trained without validation data (train-detector --validation
# chooses one from human texts the stack never saw, and stack.json records it).
FIXED_THRESHOLD = 0.9
# The language gate. The detectors are trained and validated on English (DetectorStack.languages):
# on Arabic, Bulgarian, Chinese, Indonesian, Russian and Urdu news the fastText score ranks
# backwards (AUROC 0.39). A text gets a probability only when fastText's language identification
# (detectors/language.py, lid.176.ftz on its first 500 characters) gives one of the stack's
# languages with probability >= LANGUAGE_SCORE_FLOOR, and its folded text has at least
# MIN_CHARS_TO_JUDGE characters; otherwise no probability rather than a wrong one.
# Floor, measured (bench/language_id.py): English texts passing at 0.3/0.5/0.7/0.9: dev 99.98/
# 99.98/99.84/90.2%, English web_human pages 99.70/99.70/99.11/82.8%. Non-English texts passing as
# English barely move from 0.3 to 0.7 (multilingual 0.28% at each; web_human's `lang` = other
# pages 1.15/1.01/1.01%: of those 7 at 0.5, 5 are English pages and 2 open in English). At 0.5
# English is likelier than all 175 other languages together; above 0.7 English pages are lost.
LANGUAGE_SCORE_FLOOR = 0.5
# Length, measured on the first N characters of dev's texts (cut at a space), shipped stack of
# a87b7e0d826a at 0.9, against 0.8% for whole texts; and language ID on the same prefixes:
#   N                      100    150    200    250    300    400    500
#   human texts rejected  20.8%  11.5%   7.6%   5.8%   4.3%   2.9%   1.8%
#   English kept as "en"  99.8%  99.9% 99.97% 99.98% 99.98% 99.98% 99.98%
# Language ID has levelled off by 200 characters; the detector has not, mostly on formal prose
# (SQuAD Wikipedia, arXiv). 300 halves the human rejections of 200 and declines no English page
# of web_human, 4.8% of DCLM's pages and 8.1% of dev's texts (642 of its 729 are Yelp reviews),
# against 0%, 1.6% and 2.9% at 200. Characters of the folded text; recheck after retraining.
MIN_CHARS_TO_JUDGE = 300


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
    supported: np.ndarray                   # (n,) bool: gets a probability (passed the language gate)
    language: list[str]                     # ISO 639 code from language identification ("und": empty text)
    language_score: np.ndarray              # (n,) float32 probability of `language`
    language_supported: np.ndarray          # (n,) bool: one of the stack's languages, score >= the floor
    too_short: np.ndarray                   # (n,) bool: folded text under MIN_CHARS_TO_JUDGE characters


class DetectorStack:
    def __init__(self, detectors: list, stacker: Stacker, date_prior_odds: float = DEFAULT_DATE_PRIOR_ODDS,
                 languages: tuple[str, ...] = ("en",)):
        from detectors.language import LanguageIdentifier
        self.detectors = detectors
        self.languages = tuple(languages)   # what the stack was trained and validated on: ISO 639 codes
        self.language_identifier = LanguageIdentifier()   # loads lid.176.ftz on first use
        self.stacker = stacker
        self.date_prior_odds = date_prior_odds
        self.feature_names = tuple(f"{d.name}.{f}" for d in detectors for f in d.feature_names)
        self.versions = {d.name: d.version for d in detectors}
        self.digest = "unsaved"   # sha256 of stack.json, set by load_stack
        self.about: dict = {}
        self.threshold = fixed_threshold()   # the default reject threshold and where it came from
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
        language, language_score = self.language_identifier.identify(folded)
        allowed = set(self.languages)
        known = np.fromiter((code in allowed for code in language), dtype=bool, count=len(language))
        known &= language_score >= LANGUAGE_SCORE_FLOOR
        too_short = np.fromiter(map(len, folded), dtype=np.int64, count=len(folded)) < MIN_CHARS_TO_JUDGE
        return StackScores(probability, features, self.feature_names, matches, known & ~too_short,
                           language, language_score, known, too_short)

    @property
    def version(self) -> str:
        """What scored a row: the stack file's digest, every detector's version and the language
        identification model's."""
        return (f"stack={self.digest[:12]};" + ";".join(f"{n}={v}" for n, v in self.versions.items())
                + f";language={self.language_identifier.version}")


def fixed_threshold() -> dict:
    return {"value": FIXED_THRESHOLD, "chosen_on": None, "max_fpr": None, "fpr": None, "human_texts": None}


def build_detectors(ngram_model_bytes: bytes | None) -> list:
    """The default detector set, in the stack's feature order; the ngram detector only when
    a model is given."""
    from detectors.frequency import FrequencyDetector
    from detectors.lexicon import LexiconDetector
    from detectors.residue import ResidueDetector
    from detectors.style import StyleDetector
    detectors: list = [ResidueDetector(), LexiconDetector(), StyleDetector(), FrequencyDetector()]
    if ngram_model_bytes is not None:
        from detectors.ngram import NgramDetector
        detectors.insert(0, NgramDetector.from_bytes(ngram_model_bytes))
    return detectors


def stack_document(stacker: Stacker, detectors: list, files: dict[str, bytes], about: dict,
                   threshold: dict | None = None) -> dict:
    """The stack.json of a trained stack: `files` are the other files of the folder, by name;
    `threshold` the default reject threshold and the validation it was chosen on."""
    return {"format": FORMAT, "stacker": stacker.to_json(), "threshold": threshold or fixed_threshold(),
            "languages": ["en"],   # what the stack is trained and validated on: the language gate's list
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
    stack = DetectorStack(detectors, stacker, odds, tuple(document.get("languages", ["en"])))
    recorded = document.get("detectors", {})
    if recorded != stack.versions:
        raise ModelFileError(f"{join(STACK_FILE)} was trained with detector versions {recorded}, "
                             f"this firsthand has {stack.versions}: retrain with `firsthand train-detector`")
    stack.about = document.get("about", {})
    stack.threshold = document.get("threshold") or fixed_threshold()
    stack.digest = hashlib.sha256(raw).hexdigest()
    return stack


def default_stack_folder() -> str:
    """The stack shipped inside the package (detectors/data/model)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model")
