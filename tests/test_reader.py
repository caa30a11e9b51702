"""firsthand_reader: a run as a training job reads it (pyarrow only)."""
import json
import os
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from firsthand_reader import Position, RunFolderError, Selection, open_run
from pipeline.run import run

TABLES = ("kept", "rejected")
GOLDEN_ORDER = [3, 2, 7, 4, 1, 5, 0, 6]   # keyed_order(0, -1, 8) as first released


# Pages long enough for the detectors to judge (most of the demo's are too short), two in a chat
# model's style and two plainly human, so that selections on the probability select; the weight
# policy keeps the chat-style ones in kept/.
LONG_PAGES = [
    "In today's fast-paced digital landscape, it is crucial to delve into the multifaceted interplay between "
    "technology and society. This comprehensive overview explores the pivotal role that innovation plays in "
    "fostering sustainable growth, while underscoring the importance of ethical considerations. By leveraging "
    "cutting-edge solutions, stakeholders can navigate the intricate tapestry of challenges and unlock new "
    "opportunities for a brighter future.",
    "Embarking on a journey of self-discovery is a transformative experience that can profoundly enhance one's "
    "well-being. It is essential to cultivate mindfulness, embrace resilience, and foster meaningful "
    "connections. Furthermore, by prioritizing self-care and setting realistic goals, individuals can navigate "
    "life's complexities with confidence. Ultimately, this holistic approach empowers us to thrive in an "
    "ever-evolving world.",
    "We got to the campsite late, well after dark, and my brother couldn't find the tent pegs. Turned out they "
    "were in the car the whole time, under the cooler. Dad laughed so hard he had to sit down on the tailgate. "
    "We ate cold beans out of the can that night because nobody could be bothered to light the stove, and "
    "honestly it was one of the best nights of the summer.",
    "The bus was twenty minutes late again this morning, so I missed the start of the lecture and had to "
    "borrow notes from Sam. His handwriting is terrible. I spent most of lunch trying to work out whether a "
    "squiggle was a 7 or a 1. Note to self: get the earlier bus, or finally fix the bike brakes so I can ride "
    "in when it isn't raining.",
]


@pytest.fixture(scope="module")
def run_dir(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reader")
    pages = folder / "pages.jsonl"
    pages.write_text("".join(json.dumps({"id": f"page-{i}", "text": t}) + "\n" for i, t in enumerate(LONG_PAGES)))
    out = str(folder / "run")
    run(["--input", f"{demo}/*", "--input", str(pages), "--output", out, "--num-shards", "3",
         "--synthetic-policy", "weight"])
    return out


def _reference(run_dir: str, tables=TABLES) -> list[dict]:
    """Every row of the manifest-listed files, read plainly with pyarrow."""
    manifest = json.load(open(os.path.join(run_dir, "manifest.json")))
    return [row for t in tables for entry in manifest["outputs"][t]
            for row in pq.read_table(os.path.join(run_dir, entry["path"])).to_pylist()]


def test_importing_the_reader_does_not_import_beam():
    code = "import sys, firsthand_reader, firsthand_reader.shards; print('apache_beam' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_row_is_read_exactly_once_across_4_ranks_and_2_workers(run_dir):
    selection = Selection(tables=TABLES)
    seen, per_slot = [], []
    for rank in range(4):
        for worker in range(2):
            reader = open_run(run_dir).reader(selection, columns=["id"], seed=7, rank=rank, world_size=4,
                                              worker=worker, num_workers=2, unit_rows=3)
            ids = [row["id"] for row in reader.documents()]
            per_slot.append(len(ids))
            seen.extend(ids)
    expected = sorted(r["id"] for r in _reference(run_dir))
    assert len(expected) == 48 and sorted(seen) == expected           # nothing twice, nothing missed
    assert sum(1 for n in per_slot if n) >= 6                            # and the work is spread


def test_resuming_after_n_rows_yields_exactly_the_rest(run_dir):
    settings = dict(columns=["id", "text"], seed=3, rank=1, world_size=2, unit_rows=4)
    full = [r["id"] for r in open_run(run_dir).reader(Selection(tables=TABLES), **settings).documents()]
    assert len(full) > 10
    for n in (1, 5, len(full) - 1):
        reader = open_run(run_dir).reader(Selection(tables=TABLES), **settings)
        taken = []
        for row in reader.documents():
            taken.append(row["id"])
            if len(taken) == n:
                break
        saved = json.loads(json.dumps(reader.position.to_dict()))   # as a checkpoint stores it
        rest = [r["id"] for r in open_run(run_dir).reader(Selection(tables=TABLES), **settings).documents(saved)]
        assert taken + rest == full, n


def test_resuming_between_batches(run_dir):
    settings = dict(seed=1, unit_rows=5)
    full = [i for b in open_run(run_dir).reader(Selection(tables=TABLES), **settings).batches(2)
            for i in b.column("id").to_pylist()]
    reader = open_run(run_dir).reader(Selection(tables=TABLES), **settings)
    batches = reader.batches(2)
    first = [i for _ in range(3) for i in next(batches).column("id").to_pylist()]
    rest = [i for b in open_run(run_dir).reader(Selection(tables=TABLES), **settings).batches(2, reader.position)
            for i in b.column("id").to_pylist()]
    assert first + rest == full and 3 <= len(first) < len(full)  # batches never span two units


def test_a_position_only_resumes_its_own_reader(run_dir):
    reader = open_run(run_dir).reader(seed=1)
    next(reader.documents())
    other = open_run(run_dir).reader(seed=2)
    with pytest.raises(ValueError, match="same settings"):
        next(other.documents(reader.position))
    assert Position.from_dict(reader.position.to_dict()) == reader.position


@pytest.mark.parametrize("selection, keep", [
    (Selection(tables=TABLES, max_synthetic_probability=0.5),
     lambda r: r["synthetic_probability"] is None or r["synthetic_probability"] <= 0.5),
    (Selection(tables=TABLES, max_synthetic_probability=0.5, require_probability=True),
     lambda r: r["synthetic_probability"] is not None and r["synthetic_probability"] <= 0.5),
    (Selection(tables=TABLES, representatives_only=True), lambda r: r["dup_is_representative"]),
    (Selection(tables=TABLES, exclude_flags=("id_collision", "chatbot_residue")),
     lambda r: not {"id_collision", "chatbot_residue"} & set(r["flags"])),
    (Selection(tables=TABLES, sources=("*/news-00.jsonl", "*.parquet")),
     lambda r: r["source_file"].endswith(("/news-00.jsonl", ".parquet"))),
    (Selection(tables=("kept",), representatives_only=True, max_synthetic_probability=0.2,
               exclude_flags=("date_unparseable",)),
     lambda r: r["dup_is_representative"] and (r["synthetic_probability"] is None or r["synthetic_probability"] <= 0.2)
     and "date_unparseable" not in r["flags"]),
])
def test_selections_agree_with_a_plain_pyarrow_reference(run_dir, selection, keep):
    got = sorted(r["id"] for r in open_run(run_dir).reader(selection, unit_rows=4).documents())
    expected = sorted(r["id"] for r in _reference(run_dir, selection.tables) if keep(r))
    assert got == expected
    assert 0 < len(expected) < len(_reference(run_dir, selection.tables))   # the condition did select


def test_shuffling_is_deterministic_by_seed_and_off_gives_manifest_order(run_dir):
    def order(**settings):
        return [r["id"] for r in open_run(run_dir).reader(Selection(tables=TABLES), unit_rows=4,
                                                          **settings).documents()]
    assert order(seed=5) == order(seed=5)
    assert order(seed=5) != order(seed=6) and sorted(order(seed=5)) == sorted(order(seed=6))
    assert order(shuffle=False) == [r["id"] for r in _reference(run_dir)]


def test_columns_and_sample_weights(run_dir):
    rows = list(open_run(run_dir).reader(columns=["id", "sample_weight"],
                                         selection=Selection(representatives_only=True)).documents())
    assert rows and all(set(r) == {"id", "sample_weight"} for r in rows)
    assert all(0.0 <= r["sample_weight"] <= 1.0 for r in rows)


def test_only_files_the_manifest_lists_are_trusted(run_dir, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    stray = pa.table({"id": ["stray"], "text": ["not from this run"]})
    pq.write_table(stray, os.path.join(copy, "kept", "part-99999.parquet"))
    ids = {r["id"] for r in open_run(copy).reader(columns=["id"]).documents()}
    assert "stray" not in ids and ids

    manifest = json.load(open(os.path.join(copy, "manifest.json")))
    listed = os.path.join(copy, manifest["outputs"]["kept"][0]["path"])
    pq.write_table(pq.read_table(listed).slice(1), listed)          # a listed file lost a row
    with pytest.raises(RunFolderError, match="the manifest says"):
        open_run(copy).reader().units()
    os.remove(listed)
    with pytest.raises(RunFolderError, match="cannot be read"):
        open_run(copy).reader().units()


def test_unfinished_or_failed_runs_are_refused(run_dir, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    os.rename(os.path.join(copy, "manifest.json"), os.path.join(copy, "manifest.failed.json"))
    with pytest.raises(RunFolderError, match="failed its accounting"):
        open_run(copy)
    os.remove(os.path.join(copy, "manifest.failed.json"))
    with pytest.raises(RunFolderError, match="has not finished"):
        open_run(copy)


def test_bad_settings_are_refused(run_dir):
    with pytest.raises(ValueError, match="rank"):
        open_run(run_dir).reader(rank=4, world_size=4)
    with pytest.raises(ValueError, match="unit_rows"):
        open_run(run_dir).reader(unit_rows=0)
    with pytest.raises(TypeError, match="tuple of strings"):
        Selection(sources="*.parquet")           # would otherwise match letter by letter
    with pytest.raises(ValueError, match="not document tables"):
        open_run(run_dir).reader(Selection(tables=("errors",)))


def test_the_position_is_the_start_as_soon_as_an_iterator_exists(run_dir):
    """A checkpoint taken before the first row must not restart or skip the epoch."""
    reader = open_run(run_dir).reader(Selection(tables=TABLES), unit_rows=4, seed=2)
    rows = reader.documents()
    first = [next(rows)["id"] for _ in range(6)]
    saved = reader.position
    resumed = open_run(run_dir).reader(Selection(tables=TABLES), unit_rows=4, seed=2)
    resumed.documents(saved)
    assert resumed.position == saved                       # before any row is taken
    list(rows)                                            # finish the epoch on the first reader...
    reader.documents()                                    # ...and start the next one
    assert reader.position.units_done == 0 and reader.position.rows_done == 0
    assert len(first) == 6


def test_each_row_group_is_decoded_once_by_default(run_dir, monkeypatch):
    from firsthand_reader.run_folder import RunFolder
    reads = []
    original = RunFolder.open_row_group
    monkeypatch.setattr(RunFolder, "open_row_group", lambda self, unit, columns: reads.append(
        (unit.path, unit.row_group)) or original(self, unit, columns))
    reader = open_run(run_dir).reader(Selection(tables=TABLES))
    rows = list(reader.documents())
    assert len(reads) == len(set(reads)) == len(reader.units()) and len(rows) == 48


def test_exactly_once_when_most_units_select_nothing(run_dir):
    selection = Selection(tables=TABLES, exclude_flags=("id_collision",), representatives_only=True,
                          max_synthetic_probability=0.05, require_probability=True)
    seen = [r["id"] for rank in range(4) for worker in range(2)
            for r in open_run(run_dir).reader(selection, columns=["id"], rank=rank, world_size=4, worker=worker,
                                              num_workers=2, unit_rows=2).documents()]
    assert seen and sorted(seen) == sorted(set(seen))
    assert len(seen) == len([r for r in _reference(run_dir) if r["dup_is_representative"]
                             and r["synthetic_probability"] is not None and r["synthetic_probability"] <= 0.05
                             and "id_collision" not in r["flags"]])


def test_reading_order_is_pinned_by_this_package_not_by_numpy():
    from firsthand_reader.shards import keyed_order
    assert keyed_order(0, -1, 8).tolist() == GOLDEN_ORDER    # changing it would break saved positions
    assert sorted(keyed_order(123, 7, 1000).tolist()) == list(range(1000))
    assert keyed_order(1, 0, 50).tolist() != keyed_order(2, 0, 50).tolist()


def test_a_tag_mode_run_is_read_from_documents(demo, tmp_path):
    out = str(tmp_path / "tag")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--detectors", "off"])
    rows = list(open_run(out).reader(columns=["id", "decision"]).documents())
    assert len(rows) == 44 and {r["decision"] for r in rows} == {"keep", "reject"}
    with pytest.raises(ValueError, match="tag-mode run writes documents"):
        open_run(out).reader(Selection(tables=("kept",)))


def test_pytorch_iterable_dataset_reads_each_row_once_and_resumes(run_dir, optional_import):
    torch = optional_import("torch")  # skipped only where torch is not installed, never in CI
    from firsthand_reader.torch import FirsthandIterableDataset
    everything = sorted(r["id"] for r in _reference(run_dir))
    ids = []
    for rank in range(2):
        dataset = FirsthandIterableDataset(run_dir, Selection(tables=TABLES), columns=["id"], unit_rows=3,
                                           rank=rank, world_size=2)
        ids += [row["id"] for row in torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)]
    assert sorted(ids) == everything                      # 2 ranks x 2 workers, each row once

    dataset = FirsthandIterableDataset(run_dir, Selection(tables=TABLES), columns=["id"], unit_rows=3,
                                       with_position=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    taken, positions = [], {}
    for row, worker, position in loader:
        taken.append(row["id"])
        positions[worker] = position
        if len(taken) == 9:
            break
    resumed = FirsthandIterableDataset(run_dir, Selection(tables=TABLES), columns=["id"], unit_rows=3,
                                       start_positions=positions)
    rest = [row["id"] for row in torch.utils.data.DataLoader(resumed, batch_size=None, num_workers=2)]
    assert sorted(taken + rest) == everything
    dataset.set_epoch(1)
    assert dataset.start_positions == {} and dataset.epoch == 1
