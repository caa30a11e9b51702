"""No input makes a reader or a detector raise past the error path (issue 7's property
tests; `bench/fuzz.py --cases 100000` is the long run)."""
import importlib.util
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.stack import default_stack_folder, load_stack
from pipeline.formats import RecordError, SkippedRecords, read_stream

_spec = importlib.util.spec_from_file_location("fuzz", Path(__file__).resolve().parents[1] / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


def test_quick_fuzz_of_every_reader_finds_no_crash():
    report = fuzz.fuzz(cases_per_format=400, seed=11)
    assert report["total_cases"] == 2400
    assert report["total_crashes"] == 0, json.dumps(report["formats"], indent=1)[:3000]
    for label, counts in report["formats"].items():   # the mutations did reach past the first bytes
        assert counts.get("records", 0) > 0 and counts.get("errors", 0) > 0, label


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), fmt=st.sampled_from(["jsonl", "parquet", "warc", "wet"]))
def test_any_bytes_end_as_records_or_errors(data, fmt):
    fuzz.run_case(fmt, data, f"any.{fmt}")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_json, st.dictionaries(st.sampled_from(["text", "id", "url", "date", "metadata"]), _json,
                                                 max_size=5)), max_size=12))
def test_every_json_line_is_a_record_an_error_or_a_counted_skip(values):
    lines = [json.dumps(v) for v in values]
    skipped = SkippedRecords()
    payload = "".join(line + "\n" for line in lines).encode()
    items = list(read_stream(lambda: io.BytesIO(payload), "jsonl", skipped, 1 << 16))
    assert len(items) + sum(skipped.counts.values()) == len(lines)
    for item in items:
        if not isinstance(item, RecordError):
            fuzz.run_case("jsonl", json.dumps(item.fields).encode() + b"\n", "one.jsonl")


@pytest.fixture(scope="module")
def stack():
    return load_stack(default_stack_folder())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=3000), min_size=1, max_size=8))
def test_any_text_gets_a_probability_in_0_1_or_is_declined(stack, texts):
    scores = stack.score(texts)
    assert len(scores.probability) == len(texts)
    for p, supported in zip(scores.probability, scores.supported):
        if supported:
            assert 0.0 <= p <= 1.0 and math.isfinite(p)
