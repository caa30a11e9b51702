"""The whole pipeline, in process, on the demo corpus and on crafted inputs."""
import json
import os

import pytest

from detectors.minhash import jaccard, shingles
from pipeline.options import ConfigError
from pipeline.run import run
from tests.helpers import assert_same_bytes, files_under, jsonl_bytes, manifest, read_rows, write

SHARED_WEB = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "web")


@pytest.fixture(scope="module")
def demo_run(demo, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "filter")
    run(["--input", f"{demo}/*", "--output", out])
    return out


def test_every_record_is_accounted_for(demo_run):
    m = manifest(demo_run)
    kept, rejected, errors = (read_rows(demo_run, t) for t in ("kept", "rejected", "errors"))
    assert m["status"] == "complete" and m["accounting"]["balanced"]
    assert m["counts"]["read"] == len(kept) + len(rejected) + len(errors) == 52
    assert (m["counts"]["kept"], m["counts"]["rejected"], m["counts"]["errors"]) == (len(kept), len(rejected), len(errors))
    assert sum(f["documents"] + f["errors"] for f in m["inputs"]) == m["counts"]["read"]
    listed = {t: sum(f["rows"] for f in files) for t, files in m["outputs"].items()}
    assert listed == {"kept": len(kept), "rejected": len(rejected), "errors": len(errors)}
    assert not os.path.exists(os.path.join(demo_run, "_temporary"))
    assert sorted(os.listdir(demo_run)) == ["errors", "kept", "manifest.json", "rejected", "report.html"]
    metrics = m["beam_metrics"]
    assert metrics["read.documents"] + metrics["read.errors"] == m["counts"]["read"]
    assert (metrics["write.kept"], metrics["write.rejected"], metrics["write.errors"]) == \
        (m["counts"]["kept"], m["counts"]["rejected"], m["counts"]["errors"])
    assert metrics["reason.exact_duplicate"] == m["counts"]["rejected_by_reason"]["exact_duplicate"]
    assert all(metrics[f"read.error.{kind}"] == n for kind, n in m["stages"]["read"]["errors_by_kind"].items())


def test_every_malformed_record_lands_in_errors_with_its_reason(demo_run):
    errors = read_rows(demo_run, "errors")
    by_file = sorted(((os.path.basename(e["source_file"]), e["source_position"], e["kind"]) for e in errors),
                     key=lambda t: (t[0], -1 if t[1] is None else t[1]))
    assert by_file == [
        ("broken-06.jsonl.gz", None, "truncated_file"),
        ("broken-06.jsonl.gz", 23, "invalid_json"),
        ("crawl-05.warc.gz", 5, "non_text_payload"),
        ("fineweb-02.jsonl.zst", 2, "invalid_utf8"),
        ("news-00.jsonl", 3, "invalid_json"),
        ("news-00.jsonl", 4, "not_an_object"),
        ("news-00.jsonl", 5, "missing_text"),
        ("news-00.jsonl", 8, "empty_text"),
    ]
    assert all(e["message"] and e["stage"] == "read" for e in errors)
    assert all(e["raw_excerpt"] is None or len(e["raw_excerpt"]) <= 1024 for e in errors)


def test_duplicates_keep_the_earliest_copy_and_point_to_it(demo_run):
    kept = {r["id"]: r for r in read_rows(demo_run, "kept")}
    rejected = [r for r in read_rows(demo_run, "rejected") if r["reasons"][0].endswith("_duplicate")]
    assert sorted(r["reasons"][0] for r in rejected) == ["exact_duplicate"] * 4 + ["near_duplicate"] * 3
    for r in rejected:
        rep = kept[r["dup_cluster_id"]]
        assert r["decision"] == "reject" and rep["dup_is_representative"]
        assert rep["dup_cluster_size"] == r["dup_cluster_size"] >= 2
        assert r["date"] is None or rep["date"] <= r["date"]
        same_text = rep["text_hash"] == r["text_hash"]
        assert r["reasons"] == ["exact_duplicate" if same_text else "near_duplicate"]
        if not same_text:  # the WARC page's extracted text: its title line added to the plain copy
            assert jaccard(shingles(r["text"]), shingles(rep["text"])) > 0.9
    # news-1 (2024-04-30) and dolma-a (2024-04-28, different spacing): the earlier one is kept
    news1 = next(r for r in rejected if r["id"] == "news-1")
    assert news1["dup_cluster_id"] == "dolma-a"
    assert all(r["sample_weight"] == 0.0 for r in rejected)
    assert all(r["sample_weight"] == 1.0 and r["reasons"] == [] for r in kept.values())


def test_manifest_names_the_largest_duplicate_clusters(demo_run):
    largest = manifest(demo_run)["stages"]["dedup"]["largest_clusters"]
    rows = read_rows(demo_run, "kept") + read_rows(demo_run, "rejected")
    sizes = {}
    for row in rows:
        sizes[row["dup_cluster_id"]] = sizes.get(row["dup_cluster_id"], 0) + 1
    expected = sorted(((n, c) for c, n in sizes.items() if n > 1), key=lambda t: (-t[0], t[1]))[:5]
    assert [(c["size"], c["cluster_id"]) for c in largest] == expected and expected
    kept_ids = {r["id"] for r in read_rows(demo_run, "kept")}
    assert all(c["cluster_id"] in kept_ids and c["excerpt"] for c in largest)


def test_exact_dedup_mode_rejects_only_identical_texts(demo, tmp_path):
    out = str(tmp_path / "exact")
    run(["--input", f"{demo}/*", "--output", out, "--dedup", "exact", "--detectors", "off"])
    rejected = read_rows(out, "rejected")
    assert len(rejected) == 5 and all(r["reasons"] == ["exact_duplicate"] for r in rejected)
    assert manifest(out)["stages"]["dedup"]["near_duplicates_enabled"] is False


def test_ids_are_unique_and_collisions_flagged(demo_run):
    rows = read_rows(demo_run, "kept") + read_rows(demo_run, "rejected")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    collided = [r for r in rows if "id_collision" in r["flags"]]
    assert [(r["id"][:7], os.path.basename(r["source_file"])) for r in collided] == [("news-2#", "news-00.jsonl")]
    assert json.loads(collided[0]["source_fields"])["id"] == "news-2"


def test_text_is_written_exactly_as_read(demo_run):
    dolma_a = next(r for r in read_rows(demo_run, "kept") if r["id"] == "dolma-a")
    assert ".  " in dolma_a["text"] and dolma_a["text"].endswith("\n")


def test_tag_mode_writes_every_document_with_its_decision(demo, demo_run, tmp_path):
    out = str(tmp_path / "tag")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag"])
    docs = read_rows(out, "documents")
    filtered = read_rows(demo_run, "kept") + read_rows(demo_run, "rejected")
    assert sorted((r["id"], r["decision"], tuple(r["reasons"])) for r in docs) == \
        sorted((r["id"], r["decision"], tuple(r["reasons"])) for r in filtered)
    assert not os.path.exists(os.path.join(out, "kept")) and manifest(out)["accounting"]["balanced"]
    assert set(manifest(out)["outputs"]) == {"documents", "errors"}


def test_same_bytes_in_one_process_and_in_two_worker_processes(demo, tmp_path):
    one = str(tmp_path / "one")
    two = str(tmp_path / "two")
    run(["--input", f"{demo}/*", "--output", one, "--num-shards", "3"])
    run(["--input", f"{demo}/*", "--output", two, "--num-shards", "3"], workers=2)
    shards = files_under(one, ".parquet")
    assert files_under(two, ".parquet") == shards and len(shards) >= 5
    assert_same_bytes(one, two, shards)
    assert manifest(one)["counts"] == manifest(two)["counts"]


def test_shards_split_rows_by_record_key(demo, demo_run, tmp_path):
    out = str(tmp_path / "sharded")
    run(["--input", f"{demo}/*", "--output", out, "--num-shards", "4"])
    assert len(manifest(out)["outputs"]["kept"]) > 1
    assert sorted(r["id"] for r in read_rows(out, "kept")) == sorted(r["id"] for r in read_rows(demo_run, "kept"))
    for f in manifest(out)["outputs"]["kept"]:
        import pyarrow.parquet as pq
        ids = pq.read_table(os.path.join(out, f["path"]), columns=["id"]).column("id").to_pylist()
        assert ids == sorted(ids) and len(ids) == f["rows"]


def test_refuses_a_non_empty_output_unless_overwrite(demo, tmp_path):
    out = str(tmp_path / "again")
    run(["--input", f"{demo}/news-00.jsonl", "--output", out])
    with pytest.raises(ConfigError, match="not empty"):
        run(["--input", f"{demo}/news-00.jsonl", "--output", out])
    run(["--input", f"{demo}/c4-03.parquet", "--output", out, "--overwrite"])
    assert {os.path.basename(r["source_file"]) for r in read_rows(out, "kept")} == {"c4-03.parquet"}
    assert not os.path.exists(os.path.join(out, "errors", "part-00000.parquet"))


def test_a_folder_holding_only_subfolders_is_not_empty(demo, tmp_path):
    write(str(tmp_path / "killed" / "kept" / "part-00009.parquet"), b"left by a killed run")
    with pytest.raises(ConfigError, match="not empty"):
        run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "killed")])
    run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "killed"), "--overwrite"])
    assert not (tmp_path / "killed" / "kept" / "part-00009.parquet").exists()


def test_overwrite_never_deletes_files_that_are_not_a_run(demo, tmp_path):
    write(str(tmp_path / "home" / "thesis.tex"), b"precious")
    with pytest.raises(ConfigError, match="not from a firsthand run"):
        run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "home"), "--overwrite"])
    assert (tmp_path / "home" / "thesis.tex").read_bytes() == b"precious"


def test_glob_matching_nothing_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="matched no file"):
        run(["--input", str(tmp_path / "nothing" / "*.jsonl"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--num-shards", "-1"], "num-shards"),
    (["--max-record-bytes", "0"], "max-record-bytes"),
    (["--frobnicate", "3"], "unknown option"),
    (["--preset", "pile"], "invalid choice"),
    (["--lsh-bands", "20", "--lsh-rows", "8"], "raise --minhash-perms to at least 160"),
    (["--dedup-threshold", "1.5"], "--dedup-threshold must be between 0 and 1"),
    (["--num-shards", "abc"], "invalid int value"),
])
def test_bad_options_are_refused_up_front(demo, tmp_path, args, message):
    with pytest.raises((ConfigError, SystemExit)) as info:
        run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "o")] + args)
    if info.type is ConfigError:
        assert message in str(info.value)
    assert not (tmp_path / "o").exists()


def test_a_run_with_no_documents_completes_with_zero_counts(tmp_path):
    path = write(str(tmp_path / "in" / "blank.jsonl"), b"\n\n  \n")
    m = run(["--input", path, "--output", str(tmp_path / "out")])
    assert m["status"] == "complete" and m["counts"]["read"] == 0
    assert m["stages"]["read"]["skipped_non_documents"] == {"blank_line": 3}


def test_unquoted_glob_expanded_by_the_shell_is_refused(demo, tmp_path):
    with pytest.raises(ConfigError, match="unquoted glob"):
        run(["--input", f"{demo}/news-00.jsonl", f"{demo}/c4-03.parquet", "--output", str(tmp_path / "o")])


def test_workers_with_a_remote_runner_is_refused(demo, tmp_path):
    with pytest.raises(ConfigError, match="--workers"):
        run(["--input", f"{demo}/news-00.jsonl", "--output", str(tmp_path / "o"), "--runner", "DataflowRunner"],
            workers=2)


@pytest.mark.parametrize("workers, warned", [(1, False), (2, True), (None, False)])
def test_more_than_one_local_worker_warns_of_the_runner_data_loss(workers, warned, caplog):
    from apache_beam.options.pipeline_options import DirectOptions
    from pipeline.run import beam_options
    with caplog.at_level("WARNING", logger="firsthand"):
        options = beam_options([], workers)
    assert ("multi_processing" in caplog.text) is warned
    assert options.view_as(DirectOptions).direct_running_mode == ("multi_processing" if warned else "in_memory")


@pytest.mark.parametrize("runner, route", [("FnApiRunner", "buckets"), ("DirectRunner", "buckets"),
                                           ("DataflowRunner", "flatten"), ("FlinkRunner", "flatten"),
                                           ("PortableRunner", "flatten"),
                                           ("apache_beam.runners.direct.direct_runner.SwitchingDirectRunner", "buckets")])
def test_the_route_of_the_shingle_sets_follows_the_runner(runner, route):
    from pipeline.lsh import DedupConfig
    from pipeline.run import dedup_for_runner
    config = DedupConfig(partitions=5, threshold=0.7)
    chosen = dedup_for_runner(config, runner)
    assert chosen.sets_route == route and (chosen.partitions, chosen.threshold) == (5, 0.7)


def test_the_flatten_route_gives_the_same_run_and_passes_its_cross_checks(demo, demo_run, tmp_path, monkeypatch):
    """A cluster runner's route, run locally: same kept and rejected rows, and the counts
    made and arrived across the dedup shuffles (checked by the run) still agree."""
    import dataclasses
    import pipeline.run
    from pipeline.lsh import SETS_VIA_FLATTEN
    monkeypatch.setattr(pipeline.run, "dedup_for_runner",
                        lambda dedup, runner: dataclasses.replace(dedup, sets_route=SETS_VIA_FLATTEN))
    out = str(tmp_path / "flatten")
    run(["--input", f"{demo}/*", "--output", out])
    m = manifest(out)
    assert m["status"] == "complete" and m["config"]["dedup"]["sets_route"] == SETS_VIA_FLATTEN
    assert m["beam_metrics"]["dedup.distinct_edge_halves"] > 0
    for table in ("kept", "rejected"):
        rows = sorted((r["id"], r["dup_cluster_id"], tuple(r.get("reasons") or ())) for r in read_rows(out, table))
        assert rows == sorted((r["id"], r["dup_cluster_id"], tuple(r.get("reasons") or ())) for r in read_rows(demo_run, table))


def test_compressed_parquet_is_an_error_with_advice(tmp_path):
    import pyarrow as pa
    from tests.helpers import gz, parquet_bytes
    path = write(str(tmp_path / "in" / "rows.parquet.gz"), gz(parquet_bytes(pa.table({"text": ["a"]}))))
    run(["--input", path, "--output", str(tmp_path / "out")])
    [error] = read_rows(str(tmp_path / "out"), "errors")
    assert error["kind"] == "unreadable_file" and "decompress the file" in error["message"]


def test_field_overrides_and_carried_fields(tmp_path):
    path = write(str(tmp_path / "in" / "custom.jsonl"), jsonl_bytes([
        {"body": "Custom layout text.", "key": "k1", "page": {"link": "https://x.example/"}, "extra": [1, 2]},
    ]))
    out = str(tmp_path / "out")
    run(["--input", path, "--output", out, "--text-field", "body", "--id-field", "key", "--url-field", "page.link",
         "--detectors", "off"])
    [row] = read_rows(out, "kept")
    assert (row["id"], row["text"], row["url"]) == ("k1", "Custom layout text.", "https://x.example/")
    assert json.loads(row["source_fields"]) == {"key": "k1", "page": {"link": "https://x.example/"}, "extra": [1, 2]}


@pytest.mark.skipif(not os.path.isdir(SHARED_WEB), reason="../shared/data/web is not beside this checkout")
def test_real_crawl_samples_from_shared_data(tmp_path):
    out = str(tmp_path / "real")
    inputs = [os.path.join(SHARED_WEB, n) for n in ("dolma_cc_en_head-0091.jsonl.gz", "dclm_majority.jsonl.zst")]
    inputs.append(os.path.join(SHARED_WEB, "warc", "*.warc*.gz"))
    m = run(sum((["--input", i] for i in inputs), []) + ["--output", out])
    assert m["accounting"]["balanced"]
    per_file = {os.path.basename(f["path"]): (f["documents"], f["errors"]) for f in m["inputs"]}
    assert per_file["dolma_cc_en_head-0091.jsonl.gz"] == (10, 0)
    assert per_file["dclm_majority.jsonl.zst"] == (499, 0)
    assert per_file["whirlwind.warc.wat.gz"] == (0, 1)   # WAT: metadata only, refused with a reason
    assert per_file["whirlwind.warc.wet.gz"][0] == 1 and per_file["cc-main-2020-34-excerpt.warc.gz"][0] >= 16
    urls = {r["url"] for r in read_rows(out, "kept")}
    assert "https://an.wikipedia.org/wiki/Escopete" in urls
