"""Keep or reject: a document plus its stage results become one output row."""
from __future__ import annotations

from typing import Any

from pipeline.dedup import DupInfo
from pipeline.detect import DetectConfig
from schemas import (DECISION_KEEP, DECISION_REJECT, DOCUMENT_COLUMN_NAMES, FLAG_ID_COLLISION,
                     REASON_CHATBOT_RESIDUE, REASON_SYNTHETIC)


def synthetic_reasons(doc: dict[str, Any], detect: DetectConfig) -> list[str]:
    """Why the detectors reject the document under the reject policy (none under weight)."""
    if not detect.enabled or detect.policy != "reject":
        return []
    reasons = []
    probability = doc.get("synthetic_probability")
    if probability is not None and probability >= detect.threshold:
        reasons.append(REASON_SYNTHETIC)
    if doc.get("synthetic_evidence") is not None:
        reasons.append(REASON_CHATBOT_RESIDUE)
    return reasons


def sample_weight(doc: dict[str, Any], rejected: bool, detect: DetectConfig) -> float:
    if rejected:
        return 0.0
    if not detect.enabled or detect.policy != "weight":
        return 1.0
    if doc.get("synthetic_evidence") is not None:
        return 0.0
    probability = doc.get("synthetic_probability")
    return 1.0 if probability is None else 1.0 - probability


def decide(doc: dict[str, Any], dup: DupInfo, detect: DetectConfig = DetectConfig(enabled=False)) -> dict[str, Any]:
    """The output row (schema DOCUMENT_COLUMNS) for a document, its dedup outcome and the
    detectors' scores (already in `doc`).

    The decision is the same in filter and tag mode; only where the row goes differs.
    """
    reasons = ([] if dup.reason is None else [dup.reason]) + synthetic_reasons(doc, detect)
    flags = list(doc["flags"]) + ([FLAG_ID_COLLISION] if dup.id_collision else [])
    row = {name: doc.get(name) for name in DOCUMENT_COLUMN_NAMES}
    row.update(
        id=dup.id,
        flags=flags,
        dup_cluster_id=dup.cluster_id,
        dup_cluster_size=dup.cluster_size,
        dup_is_representative=dup.is_representative,
        decision=DECISION_REJECT if reasons else DECISION_KEEP,
        reasons=reasons,
        sample_weight=sample_weight(doc, bool(reasons), detect),
    )
    return row
