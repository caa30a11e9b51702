"""The run report: written by every run, agrees with the manifest, renders in a real browser."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipeline.options import ConfigError
from pipeline.report import _evenly, make_report, write_report
from pipeline.report_stats import compare_tails, size_histogram, source_group, tail_statistics, top_words
from pipeline.run import run
from tests.helpers import jsonl_bytes, manifest, write

HOSTILE = '<script>console.error("injected")</script><img src="https://tracker.example/x.png" onerror="alert(1)">'


@pytest.fixture(scope="module")
def report_run(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write(str(root / "in" / "hostile.jsonl"), jsonl_bytes([
        {"id": "hostile-1", "url": "https://evil.example/a", "text": f"A page that carries markup {HOSTILE} in its text, and a bell\x07."}]))   # flagged, so shown
    out = str(root / "run")
    run(["--input", f"{demo}/*", "--input", str(root / "in" / "*.jsonl"), "--output", out])
    return out


def _page(run_dir: str) -> str:
    with open(os.path.join(run_dir, "report.html"), encoding="utf-8") as f:
        return f.read()


def _embedded(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="firsthand-report-data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def test_every_run_writes_its_report_and_the_numbers_agree_with_the_manifest(report_run):
    m = manifest(report_run)
    page = _page(report_run)
    data = _embedded(page)
    assert data["counts"] == m["counts"]
    assert data["share"] == m["stages"]["detect"]["machine_written_share"]
    assert data["sample"] == {"rows": m["counts"]["kept"] + m["counts"]["rejected"],
                              "documents": m["counts"]["kept"] + m["counts"]["rejected"], "exhaustive": True}
    _, figures = make_report(report_run)
    assert figures["probability"]["scored"] == m["stages"]["detect"]["with_probability"]
    assert sum(figures["probability"]["histogram"]) == m["stages"]["detect"]["with_probability"]
    assert figures["clusters"]["with_duplicates"] == m["stages"]["dedup"]["clusters_with_duplicates"]
    assert sum(n for _, n in figures["clusters"]["sizes"]) == m["stages"]["dedup"]["clusters_with_duplicates"]
    for rows in figures["composition"].values():
        assert sum(v[0] for _, v in rows) == pytest.approx(1) and sum(v[1] for _, v in rows) == pytest.approx(1)
    visible = re.sub(r"<[^>]+>", " ", page)
    for label in ("read", "kept", "rejected", "errors"):
        assert re.search(rf"\b{label}\s+{m['counts'][label]:,}\b", visible), label
    assert f"{m['stages']['detect']['machine_written_share']['estimate']:.1%}" in visible
    assert figures["tails"]["input"]["tokens"] == figures["tails"]["kept"]["tokens"] > 1000


def test_record_text_is_inert_in_the_page(report_run):
    page = _page(report_run)
    assert HOSTILE not in page and "&lt;script&gt;console.error" in page
    assert page.count("<script") == 1   # the JSON data block only
    assert "default-src 'none'" in page   # and nothing the page holds may run or load anything


def _browser() -> str | None:
    found = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if found is None and os.environ.get("FIRSTHAND_REQUIRE_BROWSER") == "1":
        pytest.fail("FIRSTHAND_REQUIRE_BROWSER=1 but no chromium on PATH (.ci/run installs Debian's chromium)")
    return found


def _headless(browser: str, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--disable-background-networking", "--no-first-run", "--disable-extensions",
                           f"--user-data-dir={profile}", "--window-size=1100,900", *args],
                          capture_output=True, text=True, timeout=120)


# Appended to a copy of the page (whose CSP is relaxed for it alone): marks each plot that the
# browser laid out with a non-empty box and drawn shapes.
_CHECK = """<script>
const plots = [...document.querySelectorAll("svg.plot")];
const drawn = plots.filter(p => { const b = p.getBBox(), r = p.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && b.width > 0 && p.querySelectorAll("rect,polyline,circle,path,line").length; });
document.body.setAttribute("data-plots", plots.length);
document.body.setAttribute("data-drawn", drawn.length);
</script>"""


def test_the_report_renders_its_plots_in_headless_chromium_without_console_errors(report_run, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium on PATH; .ci/run installs it and sets FIRSTHAND_REQUIRE_BROWSER=1")
    page = _page(report_run)
    plots = page.count('<svg class="plot"')
    assert plots >= 10
    logged = _headless(browser, tmp_path / "p1", "--enable-logging=stderr", "--v=0", "--dump-dom",
                       "file://" + os.path.join(report_run, "report.html"))
    assert logged.returncode == 0, logged.stderr[-2000:]
    console = [line for line in logged.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert logged.stdout.count('<svg class="plot"') == plots

    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
                       .replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    dom = _headless(browser, tmp_path / "p2", "--dump-dom", f"file://{checked}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    marks = re.search(r'<body data-plots="(\d+)" data-drawn="(\d+)"', dom.stdout)
    assert marks, dom.stdout[:500]
    assert int(marks.group(1)) == int(marks.group(2)) == plots


def test_report_command_writes_anywhere_and_refuses_an_unfinished_run(report_run, tmp_path):
    target = tmp_path / "elsewhere" / "r.html"
    result = subprocess.run([sys.executable, "-m", "pipeline", "report", report_run, "--out", str(target)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _embedded(target.read_text())["counts"] == manifest(report_run)["counts"]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "manifest.unchecked.json").write_text("{}")
    with pytest.raises(ConfigError, match="driver stopped"):
        write_report(str(unfinished))
    result = subprocess.run([sys.executable, "-m", "pipeline", "report", str(unfinished)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no manifest.json" in result.stderr and "Traceback" not in result.stderr


def test_a_run_without_detectors_still_gets_a_report(demo, tmp_path):
    out = str(tmp_path / "run")
    run(["--input", f"{demo}/*", "--output", out, "--detectors", "off"])
    page = _page(out)
    assert "No estimate: the detectors were off" in page and _embedded(page)["share"] is None


def test_a_report_that_fails_leaves_the_finished_run_standing(demo, tmp_path, monkeypatch, caplog):
    import pipeline.report

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(pipeline.report, "write_report", broken)
    out = str(tmp_path / "run")
    m = run(["--input", f"{demo}/news-00.jsonl", "--output", out, "--detectors", "off"])
    assert m["status"] == "complete" and os.path.exists(os.path.join(out, "manifest.json"))
    assert not os.path.exists(os.path.join(out, "report.html"))
    assert "firsthand report" in caplog.text and "disk full" in caplog.text


def test_large_runs_are_sampled_by_whole_row_groups_spread_evenly():
    units = [(f"f{i // 4}", i % 4, 10_000) for i in range(40)]   # 10 files x 4 row groups
    chosen = _evenly(units, 50_000)   # 5 groups would do; at least 8, spread over the files and their groups
    assert len(chosen) == 8 and chosen[0] == units[0] and chosen[-1] == units[-1]
    assert len({f for f, _, _ in chosen}) == 8 and len({g for _, g, _ in chosen}) == 4
    assert len(_evenly(units, 200_000)) == 20
    assert _evenly(units, 400_000) == units and len(_evenly(units, 1, at_least=1)) == 1


def test_tail_figures_match_their_definitions():
    rng = np.random.default_rng(3)
    words = [f"w{k}" for k in rng.zipf(1.6, 20_000) if k < 5000]
    stats = tail_statistics(words, top_words(words, 50))
    for n in (1, 2, 3):
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        assert stats.distinct[n] == pytest.approx(len(set(grams)) / len(grams))
    top = top_words(words, 50)
    assert stats.tail_mass == pytest.approx(sum(w not in top for w in words) / len(words))
    assert -2.0 < stats.zipf_slope < -1.0   # a Zipf(1.6) sample's rank-frequency slope
    assert stats.rank_frequency[0] == (1, max(words.count(w) for w in set(words)))


def test_a_filter_that_drops_rare_words_shows_as_a_thinner_tail():
    rng = np.random.default_rng(4)
    documents = [" ".join(f"w{k}" for k in rng.zipf(1.6, 10)) for _ in range(4000)]
    plain = [d for d in documents if all(int(w[1:]) < 200 for w in d.split())]   # about 3 in 4
    input_stats, kept_stats = compare_tails(documents, plain, top_k=50)
    assert input_stats.tokens == kept_stats.tokens == 10 * len(plain)
    assert kept_stats.tail_mass < input_stats.tail_mass
    assert kept_stats.distinct[1] < input_stats.distinct[1] and kept_stats.distinct[2] < input_stats.distinct[2]
    assert kept_stats.zipf_slope < input_stats.zipf_slope   # steeper: mass moved to the head
    same_in, same_kept = compare_tails(documents[:500], documents[:500])
    assert same_in == same_kept


def test_groups_and_cluster_size_bins():
    assert source_group("/data/cc/fineweb-00012.jsonl.zst") == "fineweb-#.jsonl.zst"
    assert size_histogram([1, 2, 2, 3, 4, 5, 9, 1000]) == [
        ("2", 2), ("3-4", 2), ("5-8", 1), ("9-16", 1), ("17-32", 0), ("33-64", 0), ("65-128", 0), ("129-256", 0),
        ("257-512", 0), ("513-1024", 1)]


def test_every_table_is_sampled_at_the_same_fraction(tmp_path):
    """A small rejected/ table must not weigh more in the 'input' than it does in the run,
    though it is read by whole row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.report import load_sample
    from schemas import document_schema

    def shard(path, count, decision):
        rows = [{"id": f"{decision}-{path.name}-{i}", "text": "some words here", "source_file": "/in/a.jsonl",
                 "source_position": i, "source_format": "jsonl", "text_hash": "0" * 32, "dup_cluster_id": f"c{i}",
                 "dup_cluster_size": 1, "dup_is_representative": True, "flags": [], "decision": decision,
                 "reasons": [] if decision == "keep" else ["synthetic"], "sample_weight": 1.0} for i in range(count)]
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=document_schema()), path, row_group_size=10_000)
        return {"path": str(path.relative_to(tmp_path)), "rows": count}

    outputs = {"kept": [shard(tmp_path / "kept" / f"part-{i}.parquet", 20_000, "keep") for i in range(3)],
               "rejected": [shard(tmp_path / "rejected" / "part-0.parquet", 2_000, "reject")]}
    sample = load_sample(str(tmp_path), {"outputs": outputs}, max_rows=6_200)
    decisions = sample.rows.column("decision").to_pylist()
    assert (decisions.count("keep"), decisions.count("reject")) == (6_000, 200)   # 10% of each
    assert len({i.split("-")[2] for i in sample.rows.column("id").to_pylist() if i.startswith("keep")}) == 3
    assert not sample.exhaustive and sample.documents == 62_000
    again = load_sample(str(tmp_path), {"outputs": outputs}, max_rows=6_200)
    assert again.rows.column("id").to_pylist() == sample.rows.column("id").to_pylist()


def test_signal_scores_become_a_matrix_with_gaps_as_nan():
    import pyarrow as pa

    from pipeline.report import _signal_drivers, _signal_matrix
    from schemas import document_schema
    kind = document_schema().field("synthetic_signals").type
    signals = pa.chunked_array([pa.array([[{"name": "a", "score": 1.0}, {"name": "b", "score": 2.0}], None], kind),
                                pa.array([[{"name": "b", "score": 4.0}], [{"name": "a", "score": 3.0}]], kind)])
    names, matrix = _signal_matrix(signals, 4)
    assert names == ["a", "b"]
    np.testing.assert_array_equal(matrix, [[1, 2], [np.nan, np.nan], [np.nan, 4], [3, np.nan]])
    drivers = _signal_drivers(signals, [[], [], ["synthetic"], ["synthetic"]], np.array([True, True, False, False]))
    # a: rejected 3 vs kept 1, b: 4 vs 2; each over its standard deviation of 1 (values 1, 3 and 2, 4)
    assert drivers == [("a", pytest.approx(2.0)), ("b", pytest.approx(2.0))]
    assert _signal_drivers(signals, [[], [], [], []], np.array([True] * 4)) == []   # nothing rejected as synthetic
