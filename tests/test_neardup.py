"""Near-duplicate clustering as Beam transforms: chains, big buckets, short texts,
determinism across settings, and agreement with a brute-force reference."""
import datetime as dt
import json
import os
import random
import tempfile
from itertools import combinations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from detectors import text_hash
from detectors.minhash import jaccard, shingles
from pipeline.dedup import DupInfo, Duplicates
from pipeline.documents import record_key
from pipeline.lsh import SETS_VIA_BUCKETS, SETS_VIA_FLATTEN, DedupConfig

UTC = dt.timezone.utc


def doc(id_, text, pos, date=None, probability=None):
    return {"key": record_key("f.jsonl", pos), "id": id_, "text": text, "source_file": "f.jsonl",
            "source_position": pos, "date": date, "text_hash": text_hash(text), "synthetic_probability": probability}


def outcomes(p, docs, config=DedupConfig()):
    result, _ = p | beam.Create(docs) | Duplicates(config)
    return result | beam.FlatMap(lambda batch: batch)


def pipeline(workers=1):
    mode = "multi_processing" if workers > 1 else "in_memory"
    return BeamTestPipeline(runner="FnApiRunner", options=PipelineOptions(
        direct_num_workers=workers, direct_running_mode=mode))


def _dump(items, path):
    with open(path, "w") as f:
        json.dump([info for _, info in items], f)


def run_dedup(docs, config=DedupConfig(), workers=1):
    """{id: DupInfo} for docs; the outcomes come back through a file, since Beam runs
    callbacks on pickled copies."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "outcomes.json")
        with pipeline(workers) as p:
            _ = outcomes(p, docs, config) | beam.combiners.ToList() | beam.Map(_dump, path)
        with open(path) as f:
            infos = [DupInfo(*info) for info in json.load(f)]
    assert len(infos) == len(docs)
    return {info.id: info for info in infos}


def words(rng, n):
    return [f"w{rng.randrange(100000)}" for _ in range(n)]


def mutate(rng, tokens, changes):
    out = list(tokens)
    for i in rng.sample(range(len(out)), changes):
        out[i] = f"z{rng.randrange(10**6)}"
    return out


def test_a_chain_of_near_copies_ends_in_one_cluster_even_where_the_ends_differ():
    rng = random.Random(11)
    chain = [words(rng, 400)]
    for _ in range(6):
        chain.append(mutate(rng, chain[-1], 4))
    texts = [" ".join(t) for t in chain]
    assert jaccard(shingles(texts[0]), shingles(texts[-1])) < 0.65 < 0.85 < jaccard(shingles(texts[0]), shingles(texts[1]))
    docs = [doc(f"c{i}", t, i, date=dt.datetime(2020 + i, 1, 1, tzinfo=UTC)) for i, t in enumerate(texts)]
    docs.append(doc("other", " ".join(words(rng, 400)), 99))
    result = run_dedup(docs)
    assert {result[f"c{i}"].cluster_id for i in range(7)} == {"c0"}
    assert result["c0"].is_representative and result["c0"].cluster_size == 7
    assert {result[f"c{i}"].reason for i in range(1, 7)} == {"near_duplicate"}
    assert result["other"] == DupInfo("other", False, "other", 1, True, None)


def test_thousands_of_identical_pages_and_their_near_copies_form_one_cluster():
    rng = random.Random(4)
    page = words(rng, 60)
    docs = [doc(f"p{i:05d}", " ".join(page), i) for i in range(3000)]
    docs += [doc(f"q{i}", " ".join(mutate(rng, page, 1)), 5000 + i) for i in range(20)]
    result = run_dedup(docs)
    reps = [info for info in result.values() if info.is_representative]
    assert len(reps) == 1 and reps[0].id == "p00000" and reps[0].cluster_size == 3020
    assert sum(info.reason == "exact_duplicate" for info in result.values()) == 2999
    assert sum(info.reason == "near_duplicate" for info in result.values()) == 20


def test_empty_one_word_and_short_texts_are_their_own_clusters_unless_identical():
    docs = [doc("e1", "", 0), doc("e2", "  ", 1), doc("w1", "Hello", 2), doc("w2", "hello", 3),
            doc("w3", "Hello", 4), doc("s1", "four words only here", 5), doc("s2", "four words only there", 6)]
    result = run_dedup(docs)
    assert result["w3"].cluster_id == "w1" and result["w3"].reason == "exact_duplicate"
    assert result["w1"].cluster_size == 2 and result["w1"].is_representative
    assert result["e2"].cluster_id == "e1" and result["e2"].reason == "exact_duplicate"  # same normalised text
    for alone in ("w2", "s1", "s2"):
        assert result[alone] == DupInfo(alone, False, alone, 1, True, None)


def test_the_kept_copy_is_earliest_then_least_synthetic_then_smallest_id():
    rng = random.Random(8)
    base = words(rng, 200)
    same_day = dt.datetime(2021, 5, 5, tzinfo=UTC)
    docs = [doc("a", " ".join(mutate(rng, base, 1)), 0, date=same_day, probability=0.9),
            doc("b", " ".join(mutate(rng, base, 1)), 1, date=same_day, probability=0.2),
            doc("c", " ".join(mutate(rng, base, 1)), 2, date=same_day, probability=None),
            doc("d", " ".join(mutate(rng, base, 1)), 3)]
    assert run_dedup(docs)["a"].cluster_id == "b"
    docs[3]["date"] = dt.datetime(2019, 1, 1, tzinfo=UTC)
    assert run_dedup(docs)["a"].cluster_id == "d"


def corpus(seed=3, families=40, unique=80):
    """Families of near copies at assorted edit rates, plus unrelated texts."""
    rng = random.Random(seed)
    docs, n = [], 0
    for f in range(families):
        base = words(rng, rng.randrange(40, 300))
        for v in range(rng.randrange(2, 6)):
            changes = int(len(base) * rng.choice([0, 0.003, 0.006, 0.01, 0.02, 0.04, 0.08]))
            docs.append(doc(f"f{f}v{v}", " ".join(mutate(rng, base, changes)), n))
            n += 1
    for u in range(unique):
        docs.append(doc(f"u{u}", " ".join(words(rng, rng.randrange(3, 200))), n))
        n += 1
    return docs


def brute_force_clusters(docs, threshold):
    sets = {d["id"]: shingles(d["text"]) for d in docs}
    parent = {i: i for i in sets}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in combinations(sets, 2):
        if sets[a] and jaccard(sets[a], sets[b]) >= threshold:
            parent[find(a)] = find(b)
    return {i: find(i) for i in sets}


def pairs(clusters):
    groups = {}
    for i, c in clusters.items():
        groups.setdefault(c, []).append(i)
    return {frozenset(p) for g in groups.values() for p in combinations(sorted(g), 2)}


def test_clusters_agree_with_brute_force_jaccard_on_a_few_hundred_documents():
    docs = corpus()
    truth = pairs(brute_force_clusters(docs, 0.8))
    predicted = pairs({i: info.cluster_id for i, info in run_dedup(docs).items()})
    assert len(truth) > 80
    precision = len(truth & predicted) / len(predicted)
    recall = len(truth & predicted) / len(truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


@pytest.fixture(scope="module")
def reference_outcomes():
    return run_dedup(corpus(seed=5))


@pytest.mark.parametrize("config", [DedupConfig(partitions=3), DedupConfig(partitions=1, cc_rounds=0),
                                    DedupConfig(cc_rounds=1), DedupConfig(sets_route=SETS_VIA_FLATTEN),
                                    DedupConfig(sets_route=SETS_VIA_FLATTEN, partitions=1, verify="signature")])
def test_outcomes_do_not_depend_on_partitions_rounds_or_the_route_of_the_sets(reference_outcomes, config):
    assert run_dedup(corpus(seed=5), config) == reference_outcomes


def test_outcomes_do_not_depend_on_batch_sizes_or_how_much_is_held_for_batching(reference_outcomes, monkeypatch):
    """Tiny batches and caps, so band keys, sketches and id rows are released while
    documents are processed (at a partition's row threshold and at the cap on held rows),
    not only at the end of the bundle."""
    import pipeline.dedup
    import pipeline.lsh
    monkeypatch.setattr(pipeline.lsh, "BAND_BATCH", 8)
    monkeypatch.setattr(pipeline.lsh, "HELD_BATCHES", 2)
    monkeypatch.setattr(pipeline.dedup, "CHUNK", 8)
    monkeypatch.setattr(pipeline.dedup, "HELD_ROWS", 20)
    assert run_dedup(corpus(seed=5), DedupConfig(partitions=16)) == reference_outcomes


def test_outcomes_are_the_same_on_two_worker_processes(reference_outcomes):
    docs = corpus(seed=5)
    with pipeline(workers=2) as p:
        expected = [(d["key"], tuple(reference_outcomes[d["id"]])) for d in docs]
        assert_that(outcomes(p, docs), equal_to(expected))


def test_verification_splits_candidates_below_its_threshold():
    rng = random.Random(9)
    base = words(rng, 300)
    near = mutate(rng, base, 8)  # Jaccard ~0.77: an LSH candidate, below 0.9
    docs = [doc("a", " ".join(base), 0), doc("b", " ".join(near), 1)]
    true = jaccard(shingles(docs[0]["text"]), shingles(docs[1]["text"]))
    assert 0.7 < true < 0.85
    assert run_dedup(docs, DedupConfig(verify=None))["b"].cluster_id == "a"
    for kind in ("shingles", "signature"):
        verified = run_dedup(docs, DedupConfig(verify=kind, threshold=0.9))
        assert verified["b"].cluster_id == "b" and verified["a"].cluster_size == 1
    assert run_dedup(docs, DedupConfig(threshold=0.7))["b"].cluster_id == "a"


def test_exact_mode_never_links_texts_that_differ():
    rng = random.Random(2)
    base = words(rng, 200)
    docs = [doc("a", " ".join(base), 0), doc("b", " ".join(mutate(rng, base, 1)), 1), doc("c", " ".join(base), 2)]
    result = run_dedup(docs, DedupConfig(near=False))
    assert result["b"].cluster_size == 1 and result["c"].cluster_id == "a"


def test_reports_say_the_components_converged():
    def converged(reports):
        finish = [r for r in reports if r["stage"] == "cc_finish"]
        lsh = sum(r["counts"]["candidate_edges"] for r in reports if r["stage"] == "lsh")
        if len(finish) != 1 or finish[0]["counts"]["finished_on_one_worker_nodes"] != 0 or lsh == 0:
            raise BeamAssertException(f"reports {reports}")

    with pipeline() as p:
        _, reports = p | beam.Create(corpus()) | Duplicates()
        assert_that(reports | beam.combiners.ToList(), lambda lists: converged(lists[0]))


def test_a_pair_proposed_by_many_bands_ships_its_sketches_once():
    """Near-identical texts share all 14 bands, grouped in different partitions: each band
    proposes the edge, but verification attaches each end's sketch once."""
    text = " ".join(words(random.Random(5), 300))
    docs = [doc("a", text, 0), doc("b", text + " tail", 1)]

    def shipped_once(lists):
        reports = [r["counts"] for r in lists[0] if r["stage"] in ("lsh", "verify")]
        total = {k: sum(r.get(k, 0) for r in reports) for k in ("candidate_edges", "edge_halves", "distinct_edge_halves")}
        if not (total["candidate_edges"] > 1 and total["edge_halves"] == 2 * total["candidate_edges"]
                and total["distinct_edge_halves"] == 2):
            raise BeamAssertException(f"halves {total}")

    with pipeline() as p:
        _, reports = p | beam.Create(docs) | Duplicates(DedupConfig(partitions=8))
        assert_that(reports | beam.combiners.ToList(), shipped_once)


def test_unconverged_components_are_finished_on_one_worker_and_reported():
    rng = random.Random(11)
    chain = [words(rng, 300)]
    for _ in range(30):
        chain.append(mutate(rng, chain[-1], 1))
    docs = [doc(f"c{i:02d}", " ".join(t), 100 - i) for i, t in enumerate(chain)]

    def finished_some(reports):
        finish = [r for r in reports[0] if r["stage"] == "cc_finish"]
        if finish[0]["counts"]["finished_on_one_worker_nodes"] == 0:
            raise BeamAssertException(f"expected a one-worker finish: {finish}")

    with pipeline() as p:
        result, reports = p | beam.Create(docs) | Duplicates(DedupConfig(cc_rounds=0))
        assert_that(reports | beam.combiners.ToList(), finished_some, label="FinishReported")
        assert_that(result | beam.FlatMap(lambda batch: [DupInfo(*info).cluster_size for _, info in batch]),
                    equal_to([31] * 31),
                    label="OneCluster")


@pytest.mark.parametrize("route", [SETS_VIA_BUCKETS, SETS_VIA_FLATTEN])
def test_the_sketches_meet_their_edges_without_a_flatten_unless_the_route_asks_for_one(route):
    """FnApiRunner materialises a Flatten of two producers as a stage of its own: one more
    copy of every shingle set, and the stage where two local worker processes lost data.
    So locally the sketches ride the bucket shuffle and leave with the edge halves on one
    output; cluster runners fuse Flattens, and there the route with one shuffle fewer has one."""
    p = beam.Pipeline()
    _ = p | beam.Create(corpus(seed=5)) | "Dedup" >> Duplicates(DedupConfig(sets_route=route))
    transforms = p.to_runner_api().components.transforms.values()
    flattens = [t.unique_name for t in transforms
                if t.spec.urn == "beam:transform:flatten:v1" and len(t.inputs) > 1]
    on_sketch_path = [n for n in flattens if n.startswith(("Dedup/BandKeys", "Dedup/GroupBuckets", "Dedup/BucketEdges",
                                                           "Dedup/WithSketches", "Dedup/Verify/JoinEnds"))]
    assert "Dedup/JoinLabels/CoGroupByKeyImpl/Flatten" in flattens
    assert on_sketch_path == ([] if route == SETS_VIA_BUCKETS else ["Dedup/WithSketches"])


def test_a_misrouted_piece_or_route_is_refused():
    import numpy as np
    from pipeline.lsh import BANDS, HALVES, split_pieces
    keys = np.arange(3, dtype=np.uint64)
    assert split_pieces([(HALVES, keys, keys, keys), ("sketches", keys, keys, keys)], HALVES) == (
        [[keys, keys, keys]], [[keys, keys, keys]])
    with pytest.raises(RuntimeError, match="internal error"):
        split_pieces([(BANDS, keys, keys)], HALVES)
    with pytest.raises(ValueError, match="sets_route"):
        DedupConfig(sets_route="Flatten")


def test_partition_sketches_are_found_by_key_across_pieces_in_the_order_asked():
    import numpy as np
    from pipeline.graph import pack, unpack
    from pipeline.lsh import PartitionSketches
    big = 2**64 - 5  # keys are uint64 hashes: past 2**63 too
    sets = {7: [1, 5], 3: [2], 11: [], 40: [4, 6, 9], big: [8]}
    pieces = [(np.array(keys, np.uint64), *pack([np.array(sets[k], np.uint32) for k in keys]))
              for keys in ([40, 3, big], [11, 7])]
    sketches = PartitionSketches(pieces)
    asked = np.array([7, big, 40, 7, 11, 3], np.uint64)
    assert [x.tolist() for x in unpack(*sketches.take(asked))] == [sets[k] for k in asked.tolist()]
    for missing in ([8], [41], [0]):  # between, past and before the keys present
        with pytest.raises(RuntimeError, match=f"document key {missing[0]} without a sketch"):
            sketches.take(np.array(missing, np.uint64))
    with pytest.raises(RuntimeError, match="without a sketch"):
        PartitionSketches([]).take(np.array([1], np.uint64))
    assert len(PartitionSketches([]).take(np.zeros(0, np.uint64))[1]) == 1
