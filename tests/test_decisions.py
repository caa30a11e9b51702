"""Keep or reject (pipeline/decisions.py): reasons, sample weights and the output row."""
import pytest

from pipeline.decisions import decide, sample_weight, synthetic_reasons
from pipeline.dedup import DupInfo
from pipeline.detect import DetectConfig
from schemas import DOCUMENT_COLUMN_NAMES

REJECT = DetectConfig(threshold=0.8, policy="reject")
WEIGHT = DetectConfig(threshold=0.8, policy="weight")
KEPT = DupInfo(id="d1", id_collision=False, cluster_id="d1", cluster_size=1, is_representative=True, reason=None)


def doc(probability=None, evidence=None, flags=()):
    return {"id": "d1", "text": "t", "synthetic_probability": probability, "synthetic_evidence": evidence,
            "flags": list(flags)}


def test_a_probability_at_the_threshold_is_rejected_and_just_below_is_not():
    # the docs say "at or above the threshold"
    assert synthetic_reasons(doc(0.8), REJECT) == ["synthetic"]
    assert synthetic_reasons(doc(0.7999999), REJECT) == []
    assert synthetic_reasons(doc(1.0), REJECT) == ["synthetic"]
    assert synthetic_reasons(doc(0.0), DetectConfig(threshold=0.0)) == ["synthetic"]


def test_residue_is_its_own_reason_and_an_unscored_document_has_none():
    assert synthetic_reasons(doc(0.9, "as an AI language model"), REJECT) == ["synthetic", "chatbot_residue"]
    assert synthetic_reasons(doc(0.1, "as an AI language model"), REJECT) == ["chatbot_residue"]
    assert synthetic_reasons(doc(None), REJECT) == []


def test_only_the_reject_policy_of_an_enabled_detector_rejects():
    for config in (WEIGHT, DetectConfig(enabled=False, threshold=0.8)):
        assert synthetic_reasons(doc(0.95, "as an AI language model"), config) == []


@pytest.mark.parametrize("document, rejected, config, weight", [
    (doc(0.25), True, WEIGHT, 0.0),                  # a rejected row never weighs
    (doc(0.25), False, WEIGHT, 0.75),                # 1 - probability
    (doc(0.25, "as an AI language model"), False, WEIGHT, 0.0),   # residue is hard evidence
    (doc(None), False, WEIGHT, 1.0),                 # unscored: full weight
    (doc(0.25), False, REJECT, 1.0),                 # weights only under the weight policy
    (doc(0.25), False, DetectConfig(enabled=False, policy="weight"), 1.0),
])
def test_sample_weight(document, rejected, config, weight):
    assert sample_weight(document, rejected, config) == weight


def test_the_row_joins_dedup_and_detector_outcomes():
    row = decide(doc(0.9, flags=["control_characters"]), KEPT, REJECT)
    assert set(row) == set(DOCUMENT_COLUMN_NAMES)
    assert (row["decision"], row["reasons"], row["sample_weight"]) == ("reject", ["synthetic"], 0.0)
    assert row["flags"] == ["control_characters"] and row["dup_is_representative"] is True

    copy = DupInfo(id="d1~2", id_collision=True, cluster_id="d0", cluster_size=3, is_representative=False,
                   reason="exact_duplicate")
    row = decide(doc(0.9), copy, REJECT)
    assert row["reasons"] == ["exact_duplicate", "synthetic"] and row["flags"] == ["id_collision"]
    assert (row["id"], row["dup_cluster_id"], row["dup_cluster_size"]) == ("d1~2", "d0", 3)

    row = decide(doc(0.3), KEPT, WEIGHT)
    assert (row["decision"], row["reasons"], row["sample_weight"]) == ("keep", [], pytest.approx(0.7))
    assert decide(doc(0.99), KEPT)["decision"] == "keep"    # detectors off by default
