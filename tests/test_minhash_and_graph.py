"""MinHash signatures (against datasketch and plain references) and the graph kernels."""
import random

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.minhash import (
    CHAR, EMPTY, MinHashConfig, MinHasher, bands_rows_for_threshold, collision_probability, estimated_jaccard,
    has_shingles, jaccard, mix64, normalize_for_shingling, normalize_unicode, shingle_hashes, shingles,
)
from pipeline import graph
from pipeline.batching import PartitionBuffers

MASK = 2**64 - 1


def reference_hash(shingle: str) -> int:
    """The documented shingle hash, one character at a time: polynomial over code points
    mod 2**64 plus the length, splitmix64-finalised, top 32 bits."""
    h, power = 0, 1
    for ch in shingle:
        h = (h + ord(ch) * power) & MASK
        power = (power * 0x100000001B3) & MASK
    h = (h + len(shingle)) & MASK
    return int(mix64(np.array([h], dtype=np.uint64))[0] >> np.uint64(32))


TEXTS = [
    "Hello, World! This is a test of the emergency broadcast system, again and again.",
    "short one",
    "",
    "Ünïcode ｆｕｌｌ width ２０２４ text — with “quotes” and snake_case_words here",
    "日本語のテキストには単語の間に空白がありません",
    "a b c d e",
]


@pytest.mark.parametrize("config", [MinHashConfig(), MinHashConfig(unit=CHAR, ngram=3),
                                    MinHashConfig(ngram=2, fold_digits=True)])
def test_batch_hashes_are_the_reference_hashes_of_the_reference_shingles(config):
    hashes, owner = shingle_hashes(TEXTS, config)
    for i, text in enumerate(TEXTS):
        assert set(hashes[owner == i].tolist()) == {reference_hash(s) for s in shingles(text, config)}


def test_signatures_equal_datasketch_minhash_bit_for_bit():
    hasher = MinHasher()
    signatures = hasher.signatures(TEXTS)
    for text, signature in zip(TEXTS, signatures):
        sketch = MinHash(num_perm=112, seed=1, hashfunc=reference_hash)
        sketch.update_batch(list(shingles(text)))
        if shingles(text):
            assert np.array_equal(sketch.hashvalues, signature)
        else:
            assert (signature == EMPTY).all()


def test_signatures_do_not_depend_on_the_batch_a_text_is_in():
    hasher = MinHasher()
    together = hasher.signatures(TEXTS)
    alone = np.vstack([hasher.signatures([t]) for t in TEXTS])
    assert np.array_equal(together, alone)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200), st.booleans())
def test_ascii_fast_path_normalises_like_the_general_path(text, fold_digits):
    assert normalize_for_shingling(text, fold_digits) == normalize_unicode(text, fold_digits)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(max_codepoint=127), st.characters(codec="utf-8"),
                                  st.sampled_from("ΣσςİßﬁＡ１٣’“—…中文字\u00a0\u200b\u0301\ud800_")), max_size=200),
       st.booleans())
def test_mixed_text_fast_path_normalises_like_the_general_path(text, fold_digits):
    assert normalize_for_shingling(text, fold_digits) == normalize_unicode(text, fold_digits)


def test_normalisation_folds_case_punctuation_width_and_optionally_digits():
    assert normalize_for_shingling("  Hello_World, 2024!!\tＡＢＣ ") == "hello world 2024 abc"
    assert normalize_for_shingling("Hello_World, 2024!!", fold_digits=True) == "hello world 0000"


def test_texts_too_short_to_shingle_have_no_signature():
    texts = ["", "   ", "one", "four words only here", "five words are just enough"]
    assert has_shingles(MinHasher().signatures(texts)).tolist() == [False, False, False, False, True]


def _words(rng, n):
    return [f"w{rng.randrange(5000)}" for _ in range(n)]


def test_estimated_jaccard_follows_the_true_jaccard():
    rng = random.Random(7)
    hasher = MinHasher()
    base = _words(rng, 300)
    for changed in (5, 20, 60, 150):
        other = list(base)
        for i in rng.sample(range(300), changed):
            other[i] = f"x{i}"
        a, b = " ".join(base), " ".join(other)
        true = jaccard(shingles(a), shingles(b))
        sig = hasher.signatures([a, b])
        assert abs(estimated_jaccard(sig[0], sig[1]) - true) < 0.12


def test_identical_texts_share_every_band_and_different_ones_almost_none():
    hasher = MinHasher()
    rng = random.Random(1)
    a, b = " ".join(_words(rng, 100)), " ".join(_words(rng, 100))
    keys = hasher.band_keys(hasher.signatures([a, "  " + a.upper() + "!", b]))
    assert keys.shape == (3, 14)
    assert np.array_equal(keys[0], keys[1]) and not np.intersect1d(keys[0], keys[2]).size
    assert len(set(keys[0].tolist())) == 14  # the band index salts each band


def test_bands_and_rows_for_a_threshold_separate_either_side_of_it():
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = bands_rows_for_threshold(threshold, 128)
        assert bands * rows <= 128
        assert collision_probability(min(1.0, threshold + 0.1), bands, rows) > 0.8
        assert collision_probability(threshold - 0.3, bands, rows) < 0.2
    with pytest.raises(ValueError):
        bands_rows_for_threshold(1.0, 128)


def test_config_refuses_more_band_rows_than_permutations():
    with pytest.raises(ValueError, match="permutations"):
        MinHashConfig(num_perm=64, bands=14, rows=8)


# --- graph kernels ---

def u64(xs):
    return np.array(xs, dtype=np.uint64)


def test_a_bucket_of_n_members_costs_n_minus_one_edges_to_its_smallest_member():
    members = u64(random.Random(3).sample(range(10, 10**9), 5000))
    a, b = graph.star_edges(u64([42] * 5000), members)
    assert len(a) == 4999 and set(b.tolist()) == {int(members.min())}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40)), max_size=120), st.sampled_from([0, 2**63, 2**64 - 41]))
def test_star_edges_link_each_member_of_a_shared_bucket_to_its_smallest_member_once(records, offset):
    records = [(bucket, member + offset) for bucket, member in records]  # also members past 2**63
    buckets, members = u64([r[0] for r in records]), u64([r[1] for r in records])
    by_bucket = {}
    for bucket, member in records:
        by_bucket.setdefault(bucket, set()).add(member)
    want = sorted({(m, min(ms)) for ms in by_bucket.values() for m in ms if m != min(ms)})
    a, b = graph.star_edges(buckets, members)
    assert a.dtype == b.dtype == np.uint64
    assert list(zip(a.tolist(), b.tolist())) == want


def run_components(a, b, rounds):
    """The Beam composite's steps on one partition: rounds, settle, one-worker finish."""
    edges = (u64(a), u64(b))
    for _ in range(rounds):
        x, y = edges
        edges, _ = graph.large_star(np.concatenate([x, y]), np.concatenate([y, x]))
        x, y = edges
        edges = graph.small_star(np.maximum(x, y), np.minimum(x, y))
    x, y = edges
    (nodes, labels), (ua, ub) = graph.settle(np.concatenate([x, y]), np.concatenate([y, x]))
    finished = graph.union_find_labels(ua, ub)
    return {n: finished.get(lab, lab) for n, lab in zip(nodes.tolist(), labels.tolist())}


def reference_components(a, b):
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for x, y in zip(a, b):
        parent[find(x)] = find(y)
    groups = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return {x: min(members) for members in groups.values() for x in members}


edge_lists = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(edge_lists, st.integers(0, 4))
def test_components_equal_union_find_whatever_the_number_of_rounds(edges, rounds):
    edges = [(x, y) for x, y in edges if x != y]
    a, b = [x for x, _ in edges], [y for _, y in edges]
    assert run_components(a, b, rounds) == reference_components(a, b)


def test_a_long_chain_converges_in_a_few_rounds():
    n = 2000
    order = random.Random(5).sample(range(1, 10**6), n)
    a, b = order[:-1], order[1:]
    x, y = u64(a), u64(b)
    unsettled = []
    for _ in range(12):
        (x, y), count = graph.large_star(np.concatenate([x, y]), np.concatenate([y, x]))
        unsettled.append(count)
        x, y = graph.small_star(np.maximum(x, y), np.minimum(x, y))
    assert unsettled[-1] == 0 and unsettled.index(0) <= 10
    assert set(run_components(a, b, 12).values()) == {min(order)}


def test_split_by_partition_keeps_every_row_once():
    keys = u64(random.Random(2).sample(range(10**12), 1000))
    parts = graph.split_by_partition(keys, (keys, keys * u64(2)), 7)
    rejoined = np.sort(np.concatenate([arrays[0] for _, arrays in parts]))
    assert np.array_equal(rejoined, np.sort(keys)) and all(0 <= p < 7 for p, _ in parts)
    assert all(((arrays[0] % u64(7)) == p).all() and (arrays[1] == arrays[0] * u64(2)).all() for p, arrays in parts)


@given(st.lists(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=5), max_size=4), max_size=4))
def test_packed_lists_concatenate_and_take_like_plain_lists(parts):
    packed = [graph.pack([np.array(x, dtype=np.uint32) for x in part]) for part in parts]
    flat = [x for part in parts for x in part]
    values, offsets = graph.concat_packed(packed)
    assert [x.tolist() for x in graph.unpack(values, offsets)] == flat
    rows = np.arange(len(flat))[::-1]
    assert [x.tolist() for x in graph.unpack(*graph.take_packed(values, offsets, rows))] == flat[::-1]


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.booleans()), max_size=40))
def test_distinct_halves_keeps_each_half_edge_once_with_its_end(halves):
    a, b = u64([x for x, _, _ in halves]), u64([y for _, y, _ in halves])
    firsts = np.array([f for _, _, f in halves], dtype=bool)
    kept = list(zip(*(x.tolist() for x in graph.distinct_halves(a, b, firsts))))
    assert kept == sorted({(x, y, f) for x, y, f in halves})


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 9)), max_size=60), st.integers(1, 20), st.integers(1, 40))
def test_partition_buffers_release_every_row_once_in_order_and_hold_a_bounded_amount(adds, rows, max_held):
    buffers = PartitionBuffers(rows, max_held, len, lambda pieces: [x for piece in pieces for x in piece])
    released, sent, counter = [], {}, 0
    for partition, size in adds:
        piece = list(range(counter, counter + size))
        counter += size
        sent.setdefault(partition, []).extend(piece)
        released.extend(buffers.add(partition, piece))
        held = sum(len(v) for v in sent.values()) - sum(len(piece) for _, piece in released)
        assert held <= max_held  # past the cap, everything is released at once
    released.extend(buffers.drain())
    got: dict[int, list[int]] = {}
    for partition, piece in released:
        got.setdefault(partition, []).extend(piece)
    assert got == sent
    assert list(buffers.drain()) == []


def test_partition_buffers_release_a_partition_once_it_reaches_its_rows():
    buffers = PartitionBuffers(4, 100, len, lambda pieces: [x for piece in pieces for x in piece])
    assert list(buffers.add(1, [1, 2])) == [] and list(buffers.add(2, [9])) == []
    assert list(buffers.add(1, [3, 4, 5])) == [(1, [1, 2, 3, 4, 5])]
    assert list(buffers.drain()) == [(2, [9])]


def test_graph_kernels_return_nothing_for_empty_input():
    a, b = graph.empty_edges()
    assert len(a) == len(b) == 0 and a.dtype == b.dtype == np.uint64
    (x, y), unsettled = graph.large_star(*graph.empty_edges())
    assert len(x) == len(y) == 0 and unsettled == 0
    assert all(len(v) == 0 for v in graph.small_star(*graph.empty_edges()))
    labels, rest = graph.settle(*graph.empty_edges())
    assert all(len(v) == 0 for v in labels + rest)
    values, offsets = graph.concat_packed([])
    assert len(values) == 0 and offsets.tolist() == [0]


def test_concat_reads_a_one_shot_iterable_once_for_every_column():
    parts = [(np.array([1, 2], np.uint64), np.array([3, 4], np.uint64)), (np.array([5], np.uint64), np.array([6], np.uint64))]
    first, second = graph.concat((p for p in parts), 2)   # a generator: consumed once
    assert first.tolist() == [1, 2, 5] and second.tolist() == [3, 4, 6]


def test_large_star_counts_a_middle_node_as_unsettled():
    # the path 1 - 2 - 3, both directions: 1 is a centre, 3 a leaf, 2 (two neighbours, one
    # smaller) is neither, so the round has not converged
    node = np.array([1, 2, 2, 3], np.uint64)
    neighbor = np.array([2, 1, 3, 2], np.uint64)
    _, unsettled = graph.large_star(node, neighbor)
    assert unsettled == 1
    _, unsettled = graph.large_star(np.array([1, 2], np.uint64), np.array([2, 1], np.uint64))
    assert unsettled == 0   # one edge: a centre and a leaf
