"""Keep or reject: a document plus its stage results become one output row."""
from __future__ import annotations

from typing import Any

from pipeline.dedup import DupInfo
from schemas import DECISION_KEEP, DECISION_REJECT, DOCUMENT_COLUMN_NAMES, FLAG_ID_COLLISION


def decide(doc: dict[str, Any], dup: DupInfo) -> dict[str, Any]:
    """The output row (schema DOCUMENT_COLUMNS) for a document and its dedup outcome.

    The decision is the same in filter and tag mode; only where the row goes differs.
    """
    reasons = [] if dup.reason is None else [dup.reason]
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
        sample_weight=0.0 if reasons else 1.0,
    )
    return row
