import datetime as dt

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.manifest import AccountingError, WriteManifest, build_manifest
from pipeline.write import write_parquet
from schemas import (
    DOCUMENT_COLUMN_NAMES, DOCUMENT_COLUMNS, ERROR_COLUMNS, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
    columns_markdown, document_schema, error_schema,
)

INPUT = {"report": "input", "path": "/in/a.jsonl", "format": "jsonl", "size_bytes": 10, "documents": 3,
         "errors": 1, "errors_by_kind": {"invalid_json": 1}, "skipped": {"blank_line": 2}}
KEPT = {"report": "output", "table": "kept", "path": "kept/part-00000.parquet", "rows": 2, "bytes": 5,
        "decisions": {"keep": 2}, "reasons": {}, "flags": {}, "duplicate_clusters": 1}
REJECTED = {"report": "output", "table": "rejected", "path": "rejected/part-00000.parquet", "rows": 1, "bytes": 5,
            "decisions": {"reject": 1}, "reasons": {"exact_duplicate": 1}, "flags": {}, "duplicate_clusters": 0}
ERRORS = {"report": "output", "table": "errors", "path": "errors/part-00000.parquet", "rows": 1, "bytes": 5,
          "kinds": {"invalid_json": 1}}
RUN_INFO = {"config": {"mode": "filter"}}


def test_balanced_run_counts_every_stage_and_reason():
    m = build_manifest([REJECTED, INPUT, ERRORS, KEPT], RUN_INFO)
    assert m["status"] == "complete" and m["accounting"]["balanced"]
    assert m["counts"] == {"read": 4, "kept": 2, "rejected": 1, "errors": 1,
                           "rejected_by_reason": {"exact_duplicate": 1}, "errors_by_kind": {"invalid_json": 1},
                           "flags": {}}
    assert m["stages"]["read"]["skipped_non_documents"] == {"blank_line": 2}
    assert m["stages"]["dedup"]["clusters_with_duplicates"] == 1
    assert [f["path"] for f in m["outputs"]["kept"]] == ["kept/part-00000.parquet"]
    assert m["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("reports", [
    [INPUT, KEPT, ERRORS],                    # a rejected shard went missing
    [INPUT, KEPT, REJECTED, ERRORS, KEPT],    # a shard counted twice
    [INPUT, KEPT, REJECTED],                  # the error rows were lost
    [INPUT, KEPT, REJECTED, {**ERRORS, "kinds": {"empty_text": 1}}],  # error kinds changed on the way
])
def test_lost_or_duplicated_rows_unbalance_the_accounting(reports):
    m = build_manifest(reports, RUN_INFO)
    assert not m["accounting"]["balanced"] and m["status"] == "accounting_failed"


def test_unbalanced_run_fails_loudly_and_writes_no_manifest(tmp_path):
    out = str(tmp_path / "run")
    p = beam.Pipeline(runner="FnApiRunner", options=PipelineOptions([]))
    p | beam.Create([INPUT, KEPT, ERRORS]) | WriteManifest(out, RUN_INFO)
    with pytest.raises(Exception, match="lost or duplicated"):
        p.run().wait_until_finish()
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not (tmp_path / "run" / "manifest.unchecked.json").exists()
    assert (tmp_path / "run" / "manifest.failed.json").exists()


def test_document_rows_round_trip_through_parquet_with_the_schema(tmp_path):
    row = {"id": "d1", "text": "héllo\nwörld", "url": None,
           "date": dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc),
           "source_file": "/in/a.jsonl", "source_position": 7, "source_format": "jsonl", "source_fields": '{"a":1}',
           "text_hash": "0" * 32, "dup_cluster_id": "d1", "dup_cluster_size": 1, "dup_is_representative": True,
           "synthetic_probability": 0.25, "synthetic_evidence": "as an AI language model",
           "detector_version": "stack=abc;residue=1", "language": "en", "language_score": 0.75,
           "synthetic_signals": [{"name": "ngram.ngram_machine_logit", "score": -1.5}], "flags": ["date_unparseable"],
           "decision": "keep", "reasons": [], "sample_weight": 1.0}
    write_parquet([row], document_schema(), str(tmp_path), "kept/part-00000.parquet")
    table = pq.read_table(tmp_path / "kept" / "part-00000.parquet")
    assert table.schema.equals(document_schema(), check_metadata=True)
    assert table.schema.metadata[SCHEMA_VERSION_KEY] == SCHEMA_VERSION.encode()
    assert table.to_pylist() == [row]
    assert pq.ParquetFile(tmp_path / "kept" / "part-00000.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    assert not (tmp_path / "_temporary" / "kept-part-00000.parquet").exists()


def test_schema_rejects_a_row_of_the_wrong_type(tmp_path):
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        pa.Table.from_pylist([{"source_file": "f", "stage": "read", "kind": "x", "message": "m",
                               "source_position": "not an int"}], schema=error_schema())


def test_every_column_is_documented_and_named_once():
    for columns in (DOCUMENT_COLUMNS, ERROR_COLUMNS):
        names = [c.name for c in columns]
        assert len(names) == len(set(names))
        assert all(len(c.doc) > 20 for c in columns)
        table = columns_markdown(columns)
        assert all(f"`{n}`" in table for n in names)
    assert DOCUMENT_COLUMN_NAMES[:2] == ("id", "text")


def test_metrics_that_disagree_with_the_manifest_fail_the_run():
    from pipeline.run import check_metrics
    m = build_manifest([REJECTED, INPUT, ERRORS, KEPT], RUN_INFO)
    good = {"read.documents": 3, "read.errors": 1, "write.kept": 2, "write.rejected": 1, "write.errors": 1}
    check_metrics(m, good)
    with pytest.raises(AccountingError, match="disagree"):
        check_metrics(m, {**good, "write.rejected": 0})


def test_records_lost_inside_the_dedup_stage_fail_the_run():
    """Band records and candidate-edge halves counted where they are made must all arrive where
    they are grouped; a runner that drops a data message must fail the run, not miss clusters."""
    from pipeline.lsh import dedup_report
    from pipeline.run import check_metrics
    reports = [REJECTED, INPUT, ERRORS, KEPT, dedup_report("lsh", band_records=40, candidate_edges=3),
               dedup_report("verify", edge_halves=6), dedup_report("verify", distinct_edge_halves=4, dropped_edges=1)]
    m = build_manifest(reports, RUN_INFO)
    good = {"read.documents": 3, "read.errors": 1, "write.kept": 2, "write.rejected": 1, "write.errors": 1,
            "dedup.band_records": 40, "dedup.candidate_edges": 3, "dedup.distinct_edge_halves": 4}
    check_metrics(m, good)
    with pytest.raises(AccountingError, match=r"difference \{'band_records': 2\}"):
        check_metrics(m, {**good, "dedup.band_records": 42})
    with pytest.raises(AccountingError, match=r"difference \{'edge_halves': 2\}"):
        check_metrics(m, {**good, "dedup.candidate_edges": 4})
    with pytest.raises(AccountingError, match=r"difference \{'distinct_edge_halves': 2\}"):
        check_metrics(m, {**good, "dedup.distinct_edge_halves": 6})  # halves lost before verification
    check_metrics(m, {**good, "dedup.labelled_nodes": 5, "dedup.labels_joined": 5})
    with pytest.raises(AccountingError, match=r"difference \{'labels': 2\}"):
        check_metrics(m, {**good, "dedup.labelled_nodes": 5, "dedup.labels_joined": 3})


def test_decisions_that_disagree_with_the_row_totals_unbalance_the_accounting():
    # every row arrived (read 4 = written 4), but one kept row is counted with no decision
    kept = {**KEPT, "decisions": {"keep": 1}}
    m = build_manifest([INPUT, kept, REJECTED, ERRORS], RUN_INFO)
    assert m["accounting"]["written_rows"] == m["accounting"]["read"] == 4
    assert m["accounting"]["kept_plus_rejected_plus_errors"] == 3
    assert not m["accounting"]["balanced"] and m["status"] == "accounting_failed"


def test_errors_are_counted_as_error_rows_written_not_as_errors_read():
    # 1 error read, 2 error rows written: counts report what reached the output
    errors = {**ERRORS, "rows": 2, "kinds": {"invalid_json": 2}}
    m = build_manifest([INPUT, KEPT, REJECTED, errors], RUN_INFO)
    assert m["counts"]["errors"] == 2 and m["counts"]["read"] == 4
    assert (m["accounting"]["errors_read"], m["accounting"]["error_rows_written"]) == (1, 2)
    assert m["accounting"]["kept_plus_rejected_plus_errors"] == 5 and not m["accounting"]["balanced"]


def test_the_dedup_stage_sums_its_reports_and_orders_rounds_by_number():
    from pipeline.lsh import dedup_report
    base = [INPUT, {**KEPT, "flags": {"id_collision": 1}}, REJECTED, ERRORS]
    dedup = [dedup_report("lsh", band_records=40, candidate_edges=3), dedup_report("lsh", band_records=2),
             dedup_report("cc_round_10", unsettled_nodes=1), dedup_report("cc_round_2", unsettled_nodes=4),
             dedup_report("cc_round_1", unsettled_nodes=9), dedup_report("cc_round_2", unsettled_nodes=1)]
    stage = build_manifest(base + dedup + [dedup_report("cc_finish", finished_on_one_worker_nodes=0)],
                           RUN_INFO)["stages"]["dedup"]
    assert stage["lsh"] == {"band_records": 42, "candidate_edges": 3} and stage["verification"] is None
    assert stage["connected_components"] == {"unsettled_nodes_by_round": [9, 5, 1],
                                             "finished_on_one_worker_nodes": 0,
                                             "converged_in_distributed_rounds": True}
    assert stage["near_duplicates_enabled"] is True and stage["id_collisions_resolved"] == 1
    stage = build_manifest(base + dedup + [dedup_report("cc_finish", finished_on_one_worker_nodes=3),
                                           dedup_report("verify", edge_halves=6)], RUN_INFO)["stages"]["dedup"]
    assert stage["connected_components"]["finished_on_one_worker_nodes"] == 3
    assert stage["connected_components"]["converged_in_distributed_rounds"] is False
    assert stage["verification"] == {"edge_halves": 6}
    # no near-duplicate stage (--dedup exact): no rounds, nothing finished on one worker
    stage = build_manifest(base, RUN_INFO)["stages"]["dedup"]
    assert stage["connected_components"] == {"unsettled_nodes_by_round": [], "finished_on_one_worker_nodes": 0,
                                             "converged_in_distributed_rounds": True}


def test_the_five_largest_clusters_come_from_every_shard():
    sizes = {"a": 3, "b": 9, "c": 2, "d": 9, "e": 4, "f": 5, "g": 7}
    clusters = [{"cluster_id": k, "size": v} for k, v in sizes.items()]
    kept = {**KEPT, "largest_clusters": clusters[:4]}
    rejected = {**REJECTED, "largest_clusters": clusters[4:]}
    stage = build_manifest([INPUT, kept, rejected, ERRORS], RUN_INFO)["stages"]["dedup"]
    assert [c["cluster_id"] for c in stage["largest_clusters"]] == ["b", "d", "g", "f", "e"]  # ties by id


def test_a_tag_mode_manifest_lists_documents_and_errors():
    documents = {**KEPT, "table": "documents", "path": "documents/part-00000.parquet", "rows": 3,
                 "decisions": {"keep": 2, "reject": 1}}
    m = build_manifest([INPUT, documents, ERRORS], {"config": {"mode": "tag"}})
    assert m["accounting"]["balanced"] and set(m["outputs"]) == {"documents", "errors"}
    assert m["stages"]["write"]["documents"] == {"files": 1, "rows": 3}


def test_the_detect_stage_sums_the_document_shards_and_estimates_the_share():
    from detectors.prevalence import Rates, adjusted_share
    rates = {"threshold": 0.9, "tpr": 0.6, "fpr": 0.05, "machine_texts": 400, "human_texts": 500}
    run_info = {"config": {"mode": "filter", "detect": {"enabled": True, "threshold": 0.9, "policy": "reject"}},
                "detector": {"name": "stack", "held_out_rates": rates}}
    kept = {**KEPT, "synthetic_scored": 790, "synthetic_with_probability": 785, "synthetic_probability_sum": 120.0,
            "synthetic_at_or_above_threshold": 0, "flags": {"detector_unsupported_language": 5}}
    rejected = {**REJECTED, "reasons": {"synthetic": 200, "chatbot_residue": 16},
                "flags": {"chatbot_residue": 20, "detector_failed": 2}, "synthetic_scored": 216,
                "synthetic_with_probability": 216, "synthetic_probability_sum": 213.4567,
                "synthetic_at_or_above_threshold": 216}
    detect = build_manifest([INPUT, kept, rejected, ERRORS], run_info)["stages"]["detect"]
    share = adjusted_share(216, 1001, Rates(0.9, 0.6, 0.05, 400, 500))
    expected = {
        "enabled": True, "model": run_info["detector"], "threshold": 0.9, "policy": "reject",
        "scored": 1006, "with_probability": 1001,
        "mean_synthetic_probability": 0.3331,          # 333.4567 / 1001 = 0.333123...
        "rejected_synthetic": 200, "rejected_chatbot_residue": 16, "chatbot_residue_flags": 20,
        "unsupported_language": 5, "failed": 2, "at_or_above_threshold": 216,
        "machine_written_share": {
            "estimate": 0.3014,                        # (216/1001 - 0.05) / 0.55 = 0.301426...
            "ci95": [round(share.low, 4), round(share.high, 4)],
            "flagged_share": 0.2158, "documents": 1001,
            "method": "adjusted classify-and-count with the stack's held-out TPR and FPR at the threshold"}}
    assert {k: detect[k] for k in expected} == expected
    assert share.low != round(share.low, 4) and share.high != round(share.high, 4)   # the rounding shows
    # reports without detector counts (detectors off): every count is 0, no mean, no share
    detect = build_manifest([INPUT, KEPT, REJECTED, ERRORS], RUN_INFO)["stages"]["detect"]
    counts = ("scored", "with_probability", "rejected_synthetic", "rejected_chatbot_residue", "chatbot_residue_flags",
              "unsupported_language", "failed", "at_or_above_threshold")
    assert [detect[k] for k in counts] == [0] * len(counts) and detect["enabled"] is False
    assert detect["mean_synthetic_probability"] is None and detect["machine_written_share"] is None


def test_reports_can_come_from_any_iterable():
    assert build_manifest(iter([REJECTED, INPUT, ERRORS, KEPT]), RUN_INFO) == \
        build_manifest([REJECTED, INPUT, ERRORS, KEPT], RUN_INFO)


def test_dedup_counts_are_zero_where_no_report_names_them():
    stage = build_manifest([INPUT, KEPT, {**REJECTED, "reasons": {}}, ERRORS], RUN_INFO)["stages"]["dedup"]
    assert (stage["exact_duplicates"], stage["near_duplicates"], stage["id_collisions_resolved"]) == (0, 0, 0)


@pytest.mark.parametrize("checked_by_driver, name", [(True, "manifest.unchecked.json"), (False, "manifest.json")])
def test_a_balanced_run_writes_its_manifest_with_the_finish_time_and_passes_on_the_counts(
        tmp_path, checked_by_driver, name):
    import json
    from apache_beam.testing.util import assert_that, equal_to
    out = tmp_path / "run"
    (out / "_temporary").mkdir(parents=True)
    p = beam.Pipeline(runner="FnApiRunner", options=PipelineOptions([]))
    transform = WriteManifest(str(out), RUN_INFO) if checked_by_driver else WriteManifest(str(out), RUN_INFO, False)
    counts = p | beam.Create([INPUT, KEPT, REJECTED, ERRORS]) | transform
    assert_that(counts, equal_to([build_manifest([INPUT, KEPT, REJECTED, ERRORS], RUN_INFO)["counts"]]))
    p.run().wait_until_finish()
    assert sorted(f.name for f in out.iterdir()) == [name]     # the temporary folder is gone
    written = json.loads((out / name).read_text())
    assert written["status"] == "complete"
    finished = dt.datetime.fromisoformat(written["finished_at"])
    assert abs(dt.datetime.now(dt.timezone.utc) - finished) < dt.timedelta(minutes=5)
