"""Word-frequency features against wordfreq's human reference table."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from detectors.frequency import FrequencyDetector, grouped_quantiles, zipf_table

wordfreq = pytest.importorskip("wordfreq")
NAMES = FrequencyDetector.feature_names


def features(*texts: str) -> list[dict[str, float]]:
    rows = FrequencyDetector().features(list(texts))
    assert rows.shape == (len(texts), len(NAMES)) and rows.dtype == np.float32
    return [dict(zip(NAMES, row.tolist())) for row in rows]


def test_zipf_values_match_wordfreq_lookups():
    text = "the house was quiet although several neighbours complained about turbines"
    words = text.split()
    expected = [wordfreq.zipf_frequency(w, "en", wordlist="large") for w in words]
    (row,) = features(text)
    assert row["zipf_mean"] == pytest.approx(np.mean(expected), abs=0.011)   # wordfreq rounds to 0.01
    assert row["zipf_std"] == pytest.approx(np.std(expected), abs=0.011)
    assert row["zipf_median"] == pytest.approx(sorted(expected)[(len(expected) - 1) // 2], abs=0.011)
    assert row["zipf_q10"] == pytest.approx(sorted(expected)[int(0.1 * (len(expected) - 1))], abs=0.011)
    assert row["oov_rate"] == 0.0
    rare = sum(z < 3.0 for z in expected) / len(words)
    mid = sum(3.0 <= z < 4.5 for z in expected) / len(words)
    assert row["rare_rate"] == pytest.approx(rare) and row["mid_rate"] == pytest.approx(mid)


def test_unknown_words_count_as_out_of_vocabulary_and_numbers_are_left_out():
    (row,) = features("the qzxvbn wplkjh cat 1999 42")
    assert row["oov_rate"] == pytest.approx(2 / 4)      # 4 letter words, 2 unknown; numbers not counted
    assert row["zipf_mean"] == pytest.approx(np.mean([wordfreq.zipf_frequency(w, "en") for w in ("the", "cat")]),
                                             abs=0.011)


def test_apostrophes_fold_as_the_tokeniser_folds_them():
    (row,) = features("don't")
    assert row["oov_rate"] == 0.0 and row["zipf_mean"] == pytest.approx(wordfreq.zipf_frequency("don't", "en"),
                                                                          abs=0.011)


def test_crafted_inputs_never_raise():
    big = "The river rose quickly after the storm, and the villagers moved uphill. " * 14_000   # ~1 MB
    empty, one, cyrillic, chinese, huge = features("", "word", "Привет мир как дела", "这是一个中文句子", big)
    assert all(v == 0.0 for v in empty.values())
    assert one["zipf_std"] == 0.0 and one["zipf_mean"] == one["zipf_q10"] == one["zipf_median"] > 0
    assert cyrillic["oov_rate"] >= 0.0 and 0.0 <= chinese["oov_rate"] <= 1.0
    assert huge["oov_rate"] == 0.0 and huge["zipf_mean"] > 4


def test_a_row_does_not_depend_on_its_batch():
    texts = ["A plain sentence about bread.", "", "Tapestry delve multifaceted landscape.", "x y z"]
    together = FrequencyDetector().features(texts)
    alone = np.concatenate([FrequencyDetector().features([t]) for t in texts])
    assert np.array_equal(together, alone)


def test_the_table_keeps_the_commoner_spelling_when_two_fold_to_one_key():
    keys, values = zipf_table()
    assert np.all(np.diff(keys) > 0) and len(keys) == len(values) > 100_000
    (row,) = features("its")   # "it's" and "its" both fold to "its": the commoner wins
    assert row["zipf_mean"] == pytest.approx(max(wordfreq.zipf_frequency("its", "en"),
                                                 wordfreq.zipf_frequency("it's", "en")), abs=0.011)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 8, allow_nan=False), max_size=12), min_size=1, max_size=6),
       st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
def test_grouped_quantiles_match_a_per_group_sort(groups, q):
    values = np.array([v for g in groups for v in g], dtype=np.float64)
    owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    got = grouped_quantiles(values, owner, len(groups), [q])[:, 0]
    for i, g in enumerate(groups):
        expected = sorted(g)[int(np.floor(q * (len(g) - 1)))] if g else 0.0
        assert got[i] == expected
