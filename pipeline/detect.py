"""ScoreDocuments: every document gets the detector stack's probability, signals and flags.

The stack loads once per DoFn instance in `setup`, from any Beam filesystem (its files are
checked against the sha256s in stack.json), and scores documents in batches. It runs before
dedup, so that a cluster's kept copy can be its least synthetic member.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.batching import BufferedFn
from pipeline.read import NAMESPACE
from schemas import FLAG_CHATBOT_RESIDUE, FLAG_DETECTOR_FAILED, FLAG_DETECTOR_TOO_SHORT, FLAG_DETECTOR_UNSUPPORTED

POLICIES = ("reject", "weight")
DEFAULT_BATCH = 256
_log = logging.getLogger("firsthand.detect")


@dataclass(frozen=True)
class DetectConfig:
    enabled: bool = True
    model: str | None = None          # a stack folder on any Beam filesystem; None: the shipped one
    threshold: float | None = None    # None: the stack's default (stack.json), set by the run before it starts
    policy: str = "reject"            # reject: at/above threshold or residue -> rejected; weight: sample weights
    date_prior_odds: float | None = None   # None: the stack's own (0.05)
    batch: int = DEFAULT_BATCH
    expected_sha256: str | None = None     # set by the run: every worker must load the stack it checked


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def stack_folder(config: DetectConfig) -> str:
    """--detector-model, or the stack shipped with firsthand."""
    from detectors.stack import default_stack_folder
    return config.model or default_stack_folder()


def load_configured_stack(config: DetectConfig):
    from detectors.stack import load_stack
    return load_stack(stack_folder(config), read_bytes=read_bytes, date_prior_odds=config.date_prior_odds)


def held_out_rates(config: DetectConfig, stack_sha256: str) -> dict[str, Any] | None:
    """The stack's true and false positive rates at the run's threshold, from the model
    folder's score_histograms.json; None when the folder has none, or it was measured with
    another stack."""
    from detectors.prevalence import HISTOGRAMS_FILE, rates_at
    path = FileSystems.join(stack_folder(config), HISTOGRAMS_FILE)
    if not FileSystems.exists(path):
        return None
    histograms = json.loads(read_bytes(path))
    if histograms.get("stack_sha256") != stack_sha256:
        return None
    rates = rates_at(histograms, config.threshold)
    return {"threshold": rates.threshold, "tpr": round(rates.tpr, 4), "fpr": round(rates.fpr, 4),
            "machine_texts": rates.machine, "human_texts": rates.human,
            "measured_on": [m["file"] for m in histograms.get("measured_on", [])]}


class ScoreDocumentsFn(BufferedFn):
    def __init__(self, config: DetectConfig):
        super().__init__(config.batch)
        self._config = config
        self._stack = None
        self._scored = Metrics.counter(NAMESPACE, "detect.scored")
        self._unsupported = Metrics.counter(NAMESPACE, "detect.unsupported_language")
        self._too_short = Metrics.counter(NAMESPACE, "detect.too_short")
        self._residue = Metrics.counter(NAMESPACE, "detect.chatbot_residue")
        self._failed = Metrics.counter(NAMESPACE, "detect.failed")

    def setup(self) -> None:
        self._stack = load_configured_stack(self._config)
        expected = self._config.expected_sha256
        if expected is not None and self._stack.digest != expected:
            raise RuntimeError(f"the detector stack at {self._config.model or 'the shipped path'} changed during "
                               f"the run (stack.json sha256 {self._stack.digest[:16]}..., the run checked "
                               f"{expected[:16]}...); do not replace a model folder while a run uses it")
        _log.info("detector stack %s loaded", self._stack.version)

    def flush(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from self._score(batch)
        except Exception:  # noqa: BLE001 - one bad text must not fail the run: find it, score the rest
            for doc in batch:
                try:
                    yield from self._score([doc])
                except Exception as error:  # noqa: BLE001
                    _log.warning("detectors failed on %s record %s (%s: %s); written unscored with the flag %s",
                                 doc["source_file"], doc["source_position"], type(error).__name__, error,
                                 FLAG_DETECTOR_FAILED)
                    self._failed.inc()
                    self._scored.inc()
                    yield {**doc, "flags": list(doc["flags"]) + [FLAG_DETECTOR_FAILED],
                           "synthetic_probability": None, "synthetic_signals": None,
                           "synthetic_evidence": None, "detector_version": self._stack.version,
                           "language": None, "language_score": None}

    def _score(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Scored copies of the batch's documents, all at once (nothing is yielded before all are scored)."""
        stack = self._stack
        scores = stack.score([doc["text"] for doc in batch], [doc["date"] for doc in batch])
        names = scores.feature_names
        version = stack.version
        out = []
        for i, doc in enumerate(batch):
            flags = list(doc["flags"])
            evidence = scores.residue[i]
            if evidence is not None:
                flags.append(FLAG_CHATBOT_RESIDUE)
            probability = float(scores.probability[i])
            if not scores.supported[i]:
                # the language gate, one flag per declined text: too short to judge (under
                # stack.MIN_CHARS_TO_JUDGE, whatever its language: identification is least sure on
                # short texts), else a language the stack was not trained on
                flags.append(FLAG_DETECTOR_TOO_SHORT if scores.too_short[i] else FLAG_DETECTOR_UNSUPPORTED)
                probability = None
            out.append({**doc, "flags": flags, "synthetic_probability": probability,
                        "synthetic_signals": [{"name": n, "score": float(v)} for n, v in zip(names, scores.features[i])],
                        "synthetic_evidence": evidence, "detector_version": version,
                        "language": scores.language[i], "language_score": float(scores.language_score[i])})
        self._scored.inc(len(batch))   # counted once the whole batch is scored
        self._residue.inc(sum(1 for doc in out if doc["synthetic_evidence"] is not None))
        self._unsupported.inc(sum(1 for doc in out if FLAG_DETECTOR_UNSUPPORTED in doc["flags"]))
        self._too_short.inc(sum(1 for doc in out if FLAG_DETECTOR_TOO_SHORT in doc["flags"]))
        return out


class ScoreDocuments(beam.PTransform):
    """documents -> the same documents with synthetic_* columns and detector flags."""

    def __init__(self, config: DetectConfig):
        super().__init__()
        self._config = config

    def expand(self, documents):
        return documents | "Score" >> beam.ParDo(ScoreDocumentsFn(self._config))
