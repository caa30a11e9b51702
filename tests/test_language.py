"""Language identification (detectors/language.py) and the detector stack's language gate."""
import hashlib
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("fasttext")

from detectors.language import (MAX_CHARS, MODEL_SHA256, UNDETERMINED, LanguageIdentifier,  # noqa: E402
                                packaged_model_path)

SHORT = {
    "en": "The train to the coast leaves at nine, so we should buy the tickets tonight.",
    "de": "Der Zug an die Küste fährt um neun Uhr ab, deshalb sollten wir die Karten heute kaufen.",
    "fr": "Le train pour la côte part à neuf heures, nous devrions donc acheter les billets ce soir.",
    "es": "El tren a la costa sale a las nueve, así que deberíamos comprar los billetes esta noche.",
    "it": "Il treno per la costa parte alle nove, quindi dovremmo comprare i biglietti stasera.",
    "nl": "De trein naar de kust vertrekt om negen uur, dus we moeten vanavond de kaartjes kopen.",
    "ru": "Поезд к морю отправляется в девять, поэтому билеты лучше купить сегодня вечером.",
    "uk": "Потяг до моря вирушає о дев'ятій, тому квитки краще купити сьогодні ввечері.",
    "zh": "去海边的火车九点出发，所以我们今天晚上应该买好车票。",
    "ja": "海辺行きの電車は九時に出発するので、今夜のうちに切符を買っておきましょう。",
    "ko": "해변으로 가는 기차는 아홉 시에 출발하니까 오늘 밤에 표를 사야 해요.",
    "ar": "يغادر القطار المتجه إلى الساحل في الساعة التاسعة، لذلك يجب أن نشتري التذاكر الليلة.",
    "hi": "तट की ओर जाने वाली ट्रेन नौ बजे निकलती है, इसलिए हमें आज रात टिकट खरीद लेने चाहिए।",
    "el": "Το τρένο για την ακτή φεύγει στις εννέα, οπότε πρέπει να αγοράσουμε τα εισιτήρια απόψε.",
}

# ~400 characters each: long enough to judge (stack.MIN_CHARS_TO_JUDGE), the same story.
ENGLISH = ("The council met on Tuesday evening to discuss the new bus timetable. Several residents said that "
           "the early service from the village had been cut without warning, and that they now had to walk "
           "to the main road in the dark. The chairman promised to write to the operator and to report back "
           "at the next meeting in March, when the budget for the coming year will also be settled.")
GERMAN = ("Der Gemeinderat traf sich am Dienstagabend, um über den neuen Busfahrplan zu sprechen. Mehrere "
          "Anwohner sagten, dass die frühe Verbindung aus dem Dorf ohne Vorwarnung gestrichen worden sei und "
          "sie nun im Dunkeln zur Hauptstraße laufen müssten. Der Vorsitzende versprach, dem Betreiber zu "
          "schreiben und bei der nächsten Sitzung im März zu berichten, wenn auch der Haushalt beschlossen wird.")


@pytest.fixture(scope="module")
def lid():
    return LanguageIdentifier()


def test_short_texts_get_their_language(lid):
    languages, scores = lid.identify(list(SHORT.values()))
    assert languages == list(SHORT)
    assert scores.dtype == np.float32 and (scores > 0.5).all() and (scores <= 1.0).all()


def test_a_batch_answers_as_each_text_alone_in_order(lid):
    texts = [SHORT["de"], "", SHORT["zh"], "   \n\t ", SHORT["en"]]
    languages, scores = lid.identify(texts)
    alone = [lid.identify([t]) for t in texts]
    assert languages == [a[0][0] for a in alone] == ["de", UNDETERMINED, "zh", UNDETERMINED, "en"]
    assert scores.tolist() == [a[1][0] for a in alone]
    assert lid.identify([]) == ([], pytest.approx(np.zeros(0)))


def test_empty_and_whitespace_only_texts_are_undetermined_with_score_zero(lid):
    languages, scores = lid.identify(["", " ", "\n\n", "\u3000\t"])
    assert languages == [UNDETERMINED] * 4 and scores.tolist() == [0.0] * 4


def test_one_word_gets_a_code_and_a_probability(lid):
    languages, scores = lid.identify(["Schmetterling", "hello", "42"])
    assert all(isinstance(code, str) and 2 <= len(code) <= 3 for code in languages)
    assert ((scores > 0) & (scores <= 1)).all()


def test_only_the_first_max_chars_are_judged_so_a_1mb_text_is_cheap(lid):
    english_head = (SHORT["en"] + " ") * (MAX_CHARS // len(SHORT["en"]) + 1)
    text = english_head + (SHORT["de"] + " ") * (1_000_000 // len(SHORT["de"]))   # ~1 MB, almost all German
    assert len(text) > 1_000_000
    languages, scores = lid.identify([text])
    assert languages == ["en"]                          # the German after the window is not read
    assert lid.identify([english_head[:MAX_CHARS]])[1][0] == scores[0]


def test_leading_whitespace_is_skipped_and_newlines_are_no_error(lid):
    languages, _ = lid.identify([" " * (2 * MAX_CHARS) + SHORT["fr"], SHORT["es"].replace(" ", "\n"),
                                 SHORT["it"].replace(" ", "\r\n")])
    assert languages == ["fr", "es", "it"]


def test_all_capitals_and_lone_surrogates(lid):
    languages, _ = lid.identify(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG AND RUNS AWAY INTO THE FOREST.",
                                 SHORT["en"] + "\ud800", SHORT["de"]])
    assert languages == ["en", "en", "de"]   # capitals alone read as Portuguese before lowercasing


def test_the_identifier_pickles_without_the_model_and_reloads(lid):
    lid.identify([SHORT["en"]])                        # loaded
    data = pickle.dumps(lid)
    assert len(data) < 1_000                           # the 900 KB model is not in the pickle
    copy = pickle.loads(data)
    assert copy.identify([SHORT["ru"]])[0] == ["ru"]


def test_the_shipped_model_is_the_recorded_file():
    with open(packaged_model_path(), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == MODEL_SHA256
    notice = (packaged_model_path().rsplit("/", 1)[0]) + "/NOTICE.md"
    with open(notice) as f:
        text = f.read()
    assert MODEL_SHA256 in text and "Attribution-Share-Alike 3.0" in text


def test_an_altered_missing_or_truncated_model_is_refused(tmp_path):
    altered = tmp_path / "altered.ftz"
    data = bytearray(open(packaged_model_path(), "rb").read())
    data[-1] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        LanguageIdentifier(altered, sha256=MODEL_SHA256).identify(["text"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LanguageIdentifier(tmp_path / "none.ftz").identify(["text"])
    truncated = tmp_path / "truncated.ftz"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="not a valid fastText model"):
        LanguageIdentifier(truncated).identify(["text"])   # no sha256 given: the layout check still holds
    copy = tmp_path / "copy.ftz"
    shutil.copy(packaged_model_path(), copy)
    assert LanguageIdentifier(copy, sha256=MODEL_SHA256).identify([SHORT["nl"]])[0] == ["nl"]


# --- the gate in the detector stack --------------------------------------------------------

def _toy_stack(languages=("en",)):
    from detectors.calibration import IsotonicCalibrator, LogisticModel
    from detectors.residue import ResidueDetector
    from detectors.stack import DetectorStack, Stacker
    logistic = LogisticModel(np.zeros(1), np.ones(1), np.ones(1), 0.0)
    calibrator = IsotonicCalibrator(np.array([-10.0, 10.0]), np.array([0.01, 0.99]))
    return DetectorStack([ResidueDetector()], Stacker(("residue.residue_match",), np.zeros(1), np.ones(1),
                                                      logistic, calibrator), languages=languages)


def test_the_gate_scores_english_and_declines_other_languages_and_short_texts():
    from detectors.stack import MIN_CHARS_TO_JUDGE
    short_english = ENGLISH[: MIN_CHARS_TO_JUDGE - 20].rsplit(" ", 1)[0]
    assert len(GERMAN) >= MIN_CHARS_TO_JUDGE and len(ENGLISH) >= MIN_CHARS_TO_JUDGE
    scores = _toy_stack().score([ENGLISH, GERMAN, short_english, ""])
    assert scores.supported.tolist() == [True, False, False, False]
    assert scores.language == ["en", "de", "en", "und"]
    assert scores.language_supported.tolist() == [True, False, True, False]
    assert scores.too_short.tolist() == [False, False, True, True]
    assert scores.language_score.dtype == np.float32 and scores.language_score[0] > 0.9


def test_the_gate_follows_the_languages_the_stack_was_trained_on():
    french = ("Le conseil s'est réuni mardi soir pour discuter des nouveaux horaires de bus. Plusieurs habitants "
              "ont dit que le service du matin avait été supprimé sans prévenir et qu'ils devaient maintenant "
              "marcher jusqu'à la route principale dans le noir. Le président a promis d'écrire à l'exploitant.")
    scores = _toy_stack(languages=("en", "de")).score([ENGLISH, GERMAN, french])
    assert scores.language == ["en", "de", "fr"] and scores.supported.tolist() == [True, True, False]


def test_a_low_language_score_is_declined(monkeypatch):
    from detectors import stack as stack_module
    monkeypatch.setattr(stack_module, "LANGUAGE_SCORE_FLOOR", 1.01)   # no text can reach it
    scores = _toy_stack().score([ENGLISH])
    assert not scores.supported[0] and not scores.language_supported[0] and scores.language == ["en"]


def test_load_stack_reads_the_stack_languages(tmp_path):
    import json

    from detectors.stack import ModelFileError, default_stack_folder, load_stack
    folder = tmp_path / "model"
    shutil.copytree(default_stack_folder(), folder)
    try:
        assert load_stack(str(folder)).languages == ("en",)          # stack.json without the key: English
    except ModelFileError as error:
        pytest.skip(f"the shipped stack does not load with this code ({error})")
    document = json.loads((folder / "stack.json").read_text())
    (folder / "stack.json").write_text(json.dumps({**document, "languages": ["en", "de"]}))
    stack = load_stack(str(folder))
    assert stack.languages == ("en", "de") and stack.score([GERMAN]).supported.tolist() == [True]


# --- the pipeline's columns ----------------------------------------------------------------

def test_the_pipeline_writes_language_columns_typed_per_the_schema_and_flags_the_gate(tmp_path):
    import glob

    from pipeline.run import run
    from schemas import document_schema
    from tests.helpers import jsonl_bytes, read_rows, write
    path = write(str(tmp_path / "in" / "d.jsonl"), jsonl_bytes([
        {"id": "en", "text": ENGLISH}, {"id": "de", "text": GERMAN},
        {"id": "short", "text": "We ran home in the rain and laughed all the way."},
        {"id": "zh", "text": SHORT["zh"] * 20}, {"id": "short-de", "text": SHORT["de"]}]))
    for mode in ("on", "off"):
        run(["--input", path, "--output", str(tmp_path / mode), "--mode", "tag", "--detectors", mode])
    for mode in ("on", "off"):
        for shard in glob.glob(str(tmp_path / mode / "documents" / "*.parquet")):
            schema = pq.read_schema(shard)
            for name, arrow_type in (("language", pa.string()), ("language_score", pa.float32())):
                assert schema.field(name).type == arrow_type == document_schema().field(name).type
                assert schema.field(name).nullable
    rows = {r["id"]: r for r in read_rows(str(tmp_path / "on"), "documents")}
    assert {k: r["language"] for k, r in rows.items()} == {"en": "en", "de": "de", "short": "en", "zh": "zh",
                                                           "short-de": "de"}
    assert all(isinstance(r["language_score"], float) and 0.5 < r["language_score"] <= 1 for r in rows.values())
    assert rows["en"]["synthetic_probability"] is not None and rows["en"]["flags"] == []
    for name, flag in (("de", "detector_unsupported_language"), ("zh", "detector_unsupported_language"),
                       ("short", "detector_text_too_short"), ("short-de", "detector_text_too_short")):
        assert rows[name]["synthetic_probability"] is None and rows[name]["flags"] == [flag]   # one reason each
    off = read_rows(str(tmp_path / "off"), "documents")
    assert len(off) == 5 and all(r["language"] is None and r["language_score"] is None for r in off)
