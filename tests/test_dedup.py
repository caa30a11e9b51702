"""Exact-duplicate clustering (near dedup off) and id resolution, run as Beam transforms."""
import datetime as dt

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from detectors import text_hash
from pipeline.dedup import DupInfo, Duplicates
from pipeline.lsh import DedupConfig
from pipeline.documents import record_key

UTC = dt.timezone.utc


def doc(id_, text, file="f.jsonl", pos=0, date=None):
    return {"key": record_key(file, pos), "id": id_, "text": text, "source_file": file,
            "source_position": pos, "date": date, "text_hash": text_hash(text)}


def dedup_outcomes(p, docs):
    """PCollection of (key, DupInfo as tuple)."""
    outcomes, _ = p | beam.Create(docs) | Duplicates(DedupConfig(near=False))
    return outcomes | beam.FlatMap(lambda batch: batch)


def pipeline():
    return BeamTestPipeline(runner="FnApiRunner", options=PipelineOptions([]))


def test_representative_is_earliest_date_then_smallest_id_with_undated_last():
    docs = [
        doc("b", "same words", pos=0, date=dt.datetime(2021, 1, 1, tzinfo=UTC)),
        doc("a", "same  words\n", pos=1),                                               # undated: ranks last
        doc("c", "same\u200b words", pos=2, date=dt.datetime(2020, 6, 1, tzinfo=UTC)),  # earliest: kept
        doc("d", "other", pos=3),
    ]
    expected = [
        (docs[0]["key"], tuple(DupInfo("b", False, "c", 3, False, "exact_duplicate"))),
        (docs[1]["key"], tuple(DupInfo("a", False, "c", 3, False, "exact_duplicate"))),
        (docs[2]["key"], tuple(DupInfo("c", False, "c", 3, True, None))),
        (docs[3]["key"], tuple(DupInfo("d", False, "d", 1, True, None))),
    ]
    with pipeline() as p:
        assert_that(dedup_outcomes(p, docs), equal_to(expected))


def test_equal_dates_fall_back_to_smallest_id():
    when = dt.datetime(2022, 2, 2, tzinfo=UTC)
    docs = [doc("z", "t", pos=0, date=when), doc("m", "t", pos=1, date=when)]
    expected = [(docs[0]["key"], ("z", False, "m", 2, False, "exact_duplicate")), (docs[1]["key"], ("m", False, "m", 2, True, None))]
    with pipeline() as p:
        assert_that(dedup_outcomes(p, docs), equal_to(expected))


def test_colliding_ids_are_made_unique_in_source_order():
    docs = [doc("x", "one", file="b.jsonl"), doc("x", "two", file="a.jsonl", pos=4),
            doc("x", "three", file="a.jsonl", pos=9)]
    renamed = [f"x#{docs[0]['key']:016x}", "x", f"x#{docs[2]['key']:016x}"]
    expected = [(docs[0]["key"], (renamed[0], True, renamed[0], 1, True, None)),
                (docs[1]["key"], ("x", False, "x", 1, True, None)),
                (docs[2]["key"], (renamed[2], True, renamed[2], 1, True, None))]
    with pipeline() as p:
        assert_that(dedup_outcomes(p, docs), equal_to(expected))


def test_renamed_ids_never_meet_input_ids_that_look_renamed():
    docs = [doc("a", "same", pos=0), doc("a", "same", pos=1), doc("a#1", "same", pos=2), doc("a#2", "x", pos=3)]

    def ids_unique_one_representative(outcomes):
        infos = [DupInfo(*info) for _, info in outcomes]
        ids = [i.id for i in infos]
        if len(set(ids)) != 4 or sum(i.is_representative for i in infos if i.cluster_size == 3) != 1:
            raise BeamAssertException(f"ids {ids}")

    with pipeline() as p:
        assert_that(dedup_outcomes(p, docs), ids_unique_one_representative)


def test_a_bucket_of_thousands_of_identical_documents_keeps_one():
    docs = [doc(f"id{i:05d}", "boilerplate footer", pos=i) for i in range(3000)]

    def one_representative(outcomes):
        infos = [DupInfo(*info) for _, info in outcomes]
        reps = [i for i in infos if i.is_representative]
        if len(infos) != 3000 or len(reps) != 1 or reps[0].id != "id00000":
            raise BeamAssertException(f"{len(infos)} outcomes, representatives {reps[:3]}")
        if {i.cluster_size for i in infos} != {3000} or {i.cluster_id for i in infos} != {"id00000"}:
            raise BeamAssertException("cluster sizes or ids disagree")

    with pipeline() as p:
        assert_that(dedup_outcomes(p, docs), one_representative)
