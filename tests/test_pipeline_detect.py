"""The detector stage in the pipeline: columns, reasons, policies, the date prior, the manifest."""
import pytest

from pipeline.options import ConfigError
from pipeline.run import run
from tests.helpers import jsonl_bytes, manifest, read_rows, write

pytest.importorskip("fasttext")


def shipped_threshold() -> float:
    from detectors.stack import default_stack_folder, load_stack
    return load_stack(default_stack_folder()).threshold["value"]


@pytest.fixture(scope="module")
def tagged(demo, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "tag")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag"])
    return out


def test_every_document_is_scored_and_residue_is_rejected_with_its_phrase(tagged):
    rows = read_rows(tagged, "documents")
    assert all(r["detector_version"].startswith("stack=") for r in rows)
    assert all(r["synthetic_signals"][0]["name"] == "ngram.ngram_machine_logit" for r in rows)
    residue = [r for r in rows if r["synthetic_evidence"] is not None]
    assert len(residue) == 2
    for r in residue:
        assert "chatbot_residue" in r["flags"] and "chatbot_residue" in r["reasons"]
        assert r["decision"] == "reject" and r["sample_weight"] == 0.0
    gate = {"detector_unsupported_language", "detector_text_too_short"}
    declined = [r for r in rows if gate & set(r["flags"])]
    assert declined and all(r["synthetic_probability"] is None and len(gate & set(r["flags"])) == 1 for r in declined)
    assert [r["text"][0] for r in rows if r["language"] == "ru"] == ["В"]   # the demo's Cyrillic page...
    assert all(r in declined for r in rows if r["language"] != "en")         # ...is declined
    # every English demo text is long enough to judge (stack.MIN_CHARS_TO_JUDGE) and gets a probability
    assert all(r["synthetic_probability"] is not None for r in rows if r["language"] == "en")
    synthetic = [r for r in rows if "synthetic" in r["reasons"]]
    t = shipped_threshold()
    assert synthetic and all(r["synthetic_probability"] >= t for r in synthetic)
    assert all(r["synthetic_probability"] < t for r in rows if r["synthetic_probability"] is not None
               and "synthetic" not in r["reasons"])


def test_the_manifest_reports_the_detector_stage(tagged):
    m = manifest(tagged)
    detect, rows = m["stages"]["detect"], read_rows(tagged, "documents")
    scored = [r["synthetic_probability"] for r in rows if r["synthetic_probability"] is not None]
    assert detect["enabled"] and detect["with_probability"] == len(scored) and detect["threshold"] == shipped_threshold()
    assert detect["scored"] == len(rows) > len(scored)   # the Russian page is scored but gets no probability
    assert detect["with_probability"] + detect["unsupported_language"] + detect["too_short"] + detect["failed"] \
        == detect["scored"]                               # one reason for every row without a probability
    assert abs(detect["mean_synthetic_probability"] - sum(scored) / len(scored)) < 1e-3
    assert detect["rejected_chatbot_residue"] == m["counts"]["rejected_by_reason"]["chatbot_residue"] == 2
    assert detect["model"]["stack_sha256"] and detect["model"]["versions"]["ngram"].startswith("2+")
    assert m["beam_metrics"]["detect.scored"] == len(rows) and m["accounting"]["balanced"]


def test_the_manifest_estimates_the_machine_written_share_from_held_out_rates(tagged):
    from detectors.prevalence import Rates, adjusted_share
    detect = manifest(tagged)["stages"]["detect"]
    rates = detect["model"]["held_out_rates"]
    t = shipped_threshold()
    assert rates["measured_on"] == ["dev.jsonl.zst", "web_validation.jsonl.zst"] and rates["threshold"] == t
    assert 0.5 < rates["tpr"] < 1 and 0 < rates["fpr"] < 0.05 and rates["machine_texts"] > 1000
    rows = read_rows(tagged, "documents")
    flagged = sum(1 for r in rows if r["synthetic_probability"] is not None and r["synthetic_probability"] >= t)
    assert detect["at_or_above_threshold"] == flagged
    share = detect["machine_written_share"]
    expected = adjusted_share(flagged, detect["with_probability"], Rates(t, rates["tpr"], rates["fpr"],
                                                                         rates["machine_texts"], rates["human_texts"]))
    assert share["estimate"] == round(expected.estimate, 4) and share["ci95"][0] <= share["estimate"] <= share["ci95"][1]


def test_no_share_estimate_without_rates_measured_for_this_stack(demo, tmp_path):
    import json
    import shutil

    from detectors.stack import default_stack_folder
    model = tmp_path / "model"
    shutil.copytree(default_stack_folder(), model)
    (model / "score_histograms.json").unlink()
    run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "none"), "--detector-model", str(model)])
    detect = manifest(str(tmp_path / "none"))["stages"]["detect"]
    assert detect["model"]["held_out_rates"] is None and detect["machine_written_share"] is None
    source = json.loads(open(f"{default_stack_folder()}/score_histograms.json").read())
    (model / "score_histograms.json").write_text(json.dumps({**source, "stack_sha256": "0" * 64}))  # another stack's
    run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "other"), "--detector-model", str(model)])
    assert manifest(str(tmp_path / "other"))["stages"]["detect"]["machine_written_share"] is None


def test_weight_policy_rejects_nothing_for_synthetic_text_and_weights_it(demo, tagged, tmp_path):
    out = str(tmp_path / "weight")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--synthetic-policy", "weight"])
    rows = read_rows(out, "documents")
    assert not any(set(r["reasons"]) & {"synthetic", "chatbot_residue"} for r in rows)
    for r in rows:
        if r["decision"] == "reject":
            assert r["sample_weight"] == 0.0
        elif r["synthetic_evidence"] is not None:
            assert r["sample_weight"] == 0.0
        elif r["synthetic_probability"] is None:
            assert r["sample_weight"] == 1.0
        else:
            assert abs(r["sample_weight"] - (1 - r["synthetic_probability"])) < 1e-6
    same = {r["id"]: r["synthetic_probability"] for r in read_rows(tagged, "documents")}
    assert {r["id"]: r["synthetic_probability"] for r in rows} == same   # the policy never changes scores


def test_a_low_threshold_rejects_scored_documents_and_the_counts_still_balance(demo, tmp_path):
    out = str(tmp_path / "low")
    run(["--input", f"{demo}/*", "--output", out, "--synthetic-threshold", "1e-9"])
    m = manifest(out)
    scored = m["stages"]["detect"]["with_probability"]
    assert m["counts"]["rejected_by_reason"]["synthetic"] == m["stages"]["detect"]["rejected_synthetic"] == scored
    assert m["accounting"]["balanced"]
    kept = read_rows(out, "kept")   # only what the gate declined can stay: too short, or not English
    assert kept and all(r["synthetic_probability"] is None for r in kept)
    assert all({"detector_unsupported_language", "detector_text_too_short"} & set(r["flags"]) for r in kept)


def test_the_date_prior_lowers_documents_dated_before_chatgpt(tmp_path):
    text = ("Certainly, the landscape of modern urban planning is multifaceted. It is crucial to delve into the "
            "intricate interplay of transport, housing and green space, which underscores a pivotal shift. "
            "Moreover, fostering vibrant communities requires a holistic approach that leverages innovative "
            "solutions and empowers stakeholders.")   # long enough to judge (stack.MIN_CHARS_TO_JUDGE)
    path = write(str(tmp_path / "in" / "d.jsonl"), jsonl_bytes([
        {"id": "old", "text": text, "date": "2020-03-01"},
        {"id": "new", "text": text + " ", "date": "2024-03-01"},
        {"id": "undated", "text": text + "  "}]))
    for odds, out in (("0.05", "prior"), ("1", "no-prior")):
        run(["--input", path, "--output", str(tmp_path / out), "--mode", "tag", "--date-prior-odds", odds,
             "--dedup", "exact"])
    p = {r["id"]: r["synthetic_probability"] for r in read_rows(str(tmp_path / "prior"), "documents")}
    q = {r["id"]: r["synthetic_probability"] for r in read_rows(str(tmp_path / "no-prior"), "documents")}
    assert p["new"] == p["undated"] == q["old"] == q["new"]
    odds_old, odds_new = p["old"] / (1 - p["old"]), p["new"] / (1 - p["new"])
    assert odds_old == pytest.approx(0.05 * odds_new, rel=1e-3)


@pytest.mark.parametrize("args,message", [
    (["--synthetic-threshold", "1.5"], "--synthetic-threshold must be in"),
    (["--date-prior-odds", "0"], "--date-prior-odds must be in"),
    (["--detector-batch", "0"], "--detector-batch must be at least 1"),
    (["--detector-model", "/nonexistent/stack"], "no readable stack.json"),
])
def test_bad_detector_options_are_refused_before_any_work(demo, tmp_path, args, message):
    with pytest.raises(ConfigError, match=message):
        run(["--input", f"{demo}/*", "--output", str(tmp_path / "out")] + args)
    assert not (tmp_path / "out").exists()


def test_scores_do_not_depend_on_the_batch_size(demo, tagged, tmp_path):
    out = str(tmp_path / "one")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--detector-batch", "1"])
    key = lambda r: (r["id"], r["synthetic_probability"], str(r["synthetic_signals"]), r["decision"])  # noqa: E731
    assert sorted(map(key, read_rows(out, "documents"))) == sorted(map(key, read_rows(tagged, "documents")))


def test_detectors_off_leaves_the_columns_null(demo, tmp_path):
    out = str(tmp_path / "off")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--detectors", "off"])
    rows = read_rows(out, "documents")
    assert all(r["synthetic_probability"] is None and r["synthetic_signals"] is None and
               r["synthetic_evidence"] is None and r["detector_version"] is None for r in rows)
    assert not any(set(r["reasons"]) & {"synthetic", "chatbot_residue"} for r in rows)
    m = manifest(out)
    assert m["stages"]["detect"]["enabled"] is False and "detector" in m and m["detector"] is None


def test_a_text_that_breaks_a_detector_is_written_unscored_and_flagged(tmp_path, monkeypatch):
    from detectors.style import StyleDetector
    real = StyleDetector.features

    def fragile(self, texts):
        if any("BOOM" in t for t in texts):
            raise ValueError("simulated detector failure")
        return real(self, texts)
    monkeypatch.setattr(StyleDetector, "features", fragile)   # the in-process runner shares this module
    path = write(str(tmp_path / "in" / "d.jsonl"), jsonl_bytes(
        [{"id": f"d{i}", "text": f"An ordinary text number {i} about the weather and the harbour. " * 6}
         for i in range(5)]
        + [{"id": "bad", "text": "This one says BOOM and breaks the style detector."}]))
    out = str(tmp_path / "out")
    run(["--input", path, "--output", out, "--mode", "tag"])
    rows = {r["id"]: r for r in read_rows(out, "documents")}
    assert rows["bad"]["flags"] == ["detector_failed"] and rows["bad"]["synthetic_probability"] is None
    assert rows["bad"]["language"] is None and rows["bad"]["language_score"] is None
    assert all(rows[f"d{i}"]["synthetic_probability"] is not None for i in range(5))
    m = manifest(out)
    assert m["stages"]["detect"]["failed"] == 1 and m["accounting"]["balanced"] and m["counts"]["read"] == 6
