"""Language identification (detectors/language.py, fastText's lid.176.ftz) on ../shared/data.

    .venv/bin/python bench/language_id.py                  # ~1 min on one core
    .venv/bin/python bench/language_id.py --windows --lengths --out /tmp/language-id.json

Measures, on texts folded as the detector stack folds them:
  right language   the share of texts whose identified language is the one they are written in:
                   multilingual.jsonl.zst by `domain` (bar: >= 97%), hc3plus_zh.jsonl.zst (Chinese),
                   m4.jsonl.zst's news-ru / news-id / wikipedia-de rows and its English rows,
                   dev.jsonl.zst (English), web_human.jsonl.zst's English pages; for web_human's
                   `lang` = "other" pages, the distribution of languages found
  gate             the share each set would pass as English (language "en" with probability >= the
                   stack's LANGUAGE_SCORE_FLOOR), at several floors
  throughput       docs/s on one core (CPU time), dev texts of 2.5-3.5 KB: language identification
                   alone, and the stack (--model) with and without it
  --windows        accuracy and cost when judging the first 80/200/300/500/1000 characters or the whole text
  --lengths        the length rule: the first N characters of dev's texts (cut at a space) scored by
                   the stack (--model; human texts at or above --threshold, AUROC) and identified, and
                   how many English texts each MIN_CHARS_TO_JUDGE would decline (dev, web_human, DCLM)
Some rows of the "non-English" sets are in English (M4's Llama-2 wrote some Russian and Indonesian
"news" in English, some HC3-Plus answers are English): a wrong answer there is often the data's label.
Skips with a message when ../shared/data is absent.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import io
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import detectors.language as language  # noqa: E402
from detectors.textnorm import fold_for_detection  # noqa: E402
from pipeline.formats.compression import open_decompressed  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MULTILINGUAL = {"arabic": "ar", "bulgarian": "bg", "chinese": "zh", "indonesian": "id", "russian": "ru", "urdu": "ur"}
M4_OTHER = {"news-ru": "ru", "news-id": "id", "wikipedia-de": "de"}
FLOORS = (0.3, 0.5, 0.7, 0.9)
WINDOWS = (80, 200, 300, 500, 1000, None)
PREFIXES = (100, 150, 200, 250, 300, 400, 500)


def rows(path: Path) -> list[dict]:
    with open(path, "rb") as raw:
        stream, _ = open_decompressed(raw)
        return [json.loads(line) for line in io.TextIOWrapper(stream, encoding="utf-8") if line.strip()]


def labelled_sets() -> dict[str, tuple[list[str], list[str]]]:
    """name -> (folded texts, expected language code)."""
    detector, web = SHARED / "detector", SHARED / "web"
    out: dict[str, tuple[list[str], list[str]]] = {}

    def add(name, records, code_of):
        out[name] = ([fold_for_detection(r["text"]) for r in records], [code_of(r) for r in records])
    multilingual = rows(detector / "multilingual.jsonl.zst")
    for domain in sorted(MULTILINGUAL):
        add(f"multilingual {domain}", [r for r in multilingual if r["domain"] == domain],
            lambda r: MULTILINGUAL[r["domain"]])
    add("multilingual (all)", multilingual, lambda r: MULTILINGUAL[r["domain"]])
    hc3 = rows(detector / "hc3plus_zh.jsonl.zst")
    for label in ("human", "machine"):
        add(f"hc3plus_zh {label}", [r for r in hc3 if r["label"] == label], lambda r: "zh")
    m4 = rows(detector / "m4.jsonl.zst")
    for domain in sorted(M4_OTHER):
        add(f"m4 {domain}", [r for r in m4 if r["domain"] == domain], lambda r: M4_OTHER[r["domain"]])
    add("m4 English rows", [r for r in m4 if r["domain"] not in M4_OTHER], lambda r: "en")
    add("dev (English)", rows(detector / "dev.jsonl.zst"), lambda r: "en")
    human_web = rows(web / "web_human.jsonl.zst")
    add("web_human lang=en", [r for r in human_web if r["lang"] == "en"], lambda r: "en")
    add("web_human lang=other", [r for r in human_web if r["lang"] != "en"], lambda r: "")
    return out


def right_language(identifier, sets) -> dict:
    from detectors.stack import LANGUAGE_SCORE_FLOOR
    out = {}
    print(f"\n{'set':28s} {'texts':>6s} {'right':>7s} {'right, p>=' + str(LANGUAGE_SCORE_FLOOR):>14s}  "
          + "  ".join(f"as en@{f}" for f in FLOORS) + "   most common wrong answers")
    for name, (texts, expected) in sets.items():
        codes, scores = identifier.identify(texts)
        got, want = np.asarray(codes, dtype=object), np.asarray(expected, dtype=object)
        english = {f: float(((got == "en") & (scores >= f)).mean()) for f in FLOORS}
        entry = {"texts": len(texts), "as_english_at_floor": {str(f): round(v, 4) for f, v in english.items()}}
        if name.endswith("lang=other"):
            entry["languages"] = dict(Counter(codes).most_common())
            right = right_floor = wrong = ""
        else:
            entry["right"] = round(float((got == want).mean()), 4)
            entry["right_at_floor"] = round(float(((got == want) & (scores >= LANGUAGE_SCORE_FLOOR)).mean()), 4)
            entry["wrong"] = dict(Counter(f"{w}->{g}" for w, g in zip(expected, codes) if w != g).most_common(4))
            right, right_floor = f"{entry['right']:.2%}", f"{entry['right_at_floor']:.2%}"
            wrong = ", ".join(f"{k} {v}" for k, v in entry["wrong"].items())
        out[name] = entry
        print(f"{name:28s} {len(texts):6d} {right:>7s} {right_floor:>14s}  "
              + "  ".join(f"{english[f]:8.2%}" for f in FLOORS) + f"   {wrong}")
    other = out["web_human lang=other"]["languages"]
    print("web_human lang=other, languages found: " + ", ".join(f"{k} {v}" for k, v in other.items()))
    return out


def three_kb(sets) -> list[str]:
    texts = [t for t in sets["dev (English)"][0] if 2500 <= len(t) <= 3500]
    return texts


def throughput(identifier, texts: list[str], repeats: int, model: str | None) -> dict:
    """CPU time of one process (steadier than wall time on a shared machine): language
    identification alone, and the stack (--model) with and without it, interleaved."""
    from detectors.stack import ModelFileError, default_stack_folder, load_stack
    identifier.identify(texts[:1])   # loaded
    try:
        stack = load_stack(model or default_stack_folder())
    except ModelFileError as error:
        print(f"\nthe stack does not load ({error}): language identification alone")
        stack = None

    def lid():
        for i in range(0, len(texts), 256):
            identifier.identify(texts[i:i + 256])

    def with_lid():
        for i in range(0, len(texts), 256):
            stack.score(texts[i:i + 256])

    def without_lid():
        for i in range(0, len(texts), 256):
            stack.stacker.probability(stack.features(texts[i:i + 256])[0], stack.feature_names)
    runs = {"lid": lid} if stack is None else {"lid": lid, "stack": with_lid, "stack_without_lid": without_lid}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, work in runs.items():
            started = time.process_time()
            work()
            rates[name].append(len(texts) / (time.process_time() - started))
    median = {name: statistics.median(r) for name, r in rates.items()}
    out = {"docs": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts]))),
           "docs_per_cpu_second": {name: [round(r) for r in v] for name, v in rates.items()},
           "median": {name: round(v) for name, v in median.items()}}
    print(f"\nthroughput, one core (CPU time, median of {repeats}): {out['docs']} dev texts of 2.5-3.5 KB "
          f"(mean {out['mean_chars']} chars): language identification {median['lid']:,.0f} docs/s "
          f"({1e6 / median['lid']:.0f} us per text)")
    if stack is not None:
        out["stack_slowdown"] = round(1 - median["stack"] / median["stack_without_lid"], 4)
        print(f"  the stack: {median['stack']:,.0f} docs/s with it, {median['stack_without_lid']:,.0f} without "
              f"({out['stack_slowdown']:.1%} slower)")
    return out


def windows(identifier, sets, texts_3kb: list[str]) -> dict:
    out = {}
    names = ["multilingual (all)", "hc3plus_zh human", "m4 English rows", "dev (English)", "web_human lang=en"]
    print(f"\n{'window':>8s} " + " ".join(f"{n[:18]:>18s}" for n in names) + "   CPU us/text on 3 KB")
    saved = language.MAX_CHARS
    try:
        for window in WINDOWS:
            language.MAX_CHARS = window if window is not None else 10 ** 9
            shares = []
            for name in names:
                texts, expected = sets[name]
                codes, _ = identifier.identify(texts)
                shares.append(float(np.mean([c == e for c, e in zip(codes, expected)])))
            costs = []
            for _ in range(3):
                started = time.process_time()
                identifier.identify(texts_3kb)
                costs.append(1e6 * (time.process_time() - started) / len(texts_3kb))
            cost = statistics.median(costs)
            out[str(window or "whole")] = {"right": dict(zip(names, [round(s, 4) for s in shares])),
                                           "us_per_3kb_text": round(cost)}
            print(f"{str(window or 'whole'):>8s} " + " ".join(f"{s:18.2%}" for s in shares) + f"   {cost:6.0f}")
    finally:
        language.MAX_CHARS = saved
    return out


def _prefix(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    cut = text[:n]
    space = cut.rfind(" ")
    return cut[:space] if space > n // 2 else cut


def lengths(identifier, model: str | None, threshold: float) -> dict:
    from detectors.metrics import auroc
    from detectors.stack import LANGUAGE_SCORE_FLOOR, ModelFileError, default_stack_folder, load_stack
    dev = rows(SHARED / "detector" / "dev.jsonl.zst")
    texts = [fold_for_detection(r["text"]) for r in dev]
    y = np.array([r["label"] == "machine" for r in dev])
    out: dict = {"threshold": threshold, "prefixes": {}}
    try:
        stack = load_stack(model or default_stack_folder())
    except ModelFileError as error:
        print(f"\n--lengths: the stack does not load ({error}); language identification only")
        stack = None
    print(f"\nfirst N characters of dev's {len(texts)} texts: human texts at p >= {threshold}, AUROC, "
          f"English identified with p >= {LANGUAGE_SCORE_FLOOR}")
    for n in (*PREFIXES, None):
        cut = texts if n is None else [_prefix(t, n) for t in texts]
        codes, scores = identifier.identify(cut)
        entry = {"identified_english": round(float(np.mean([(c == "en") & (s >= LANGUAGE_SCORE_FLOOR)
                                                            for c, s in zip(codes, scores)])), 4)}
        if stack is not None:
            p = stack.stacker.probability(stack.features(cut)[0], stack.feature_names)
            entry.update(human_at_threshold=round(float((p[~y] >= threshold).mean()), 4),
                         auroc=round(float(auroc(p, y.astype(int))), 4))
        out["prefixes"][str(n or "whole")] = entry
        print(f"  N={str(n or 'whole'):>5s}  " + "  ".join(f"{k} {v}" for k, v in entry.items()))
    english = {"dev": texts,
               "web_human en": [fold_for_detection(r["text"]) for r in rows(SHARED / "web" / "web_human.jsonl.zst")
                                if r["lang"] == "en"],
               "dclm": [fold_for_detection(r["text"]) for r in rows(SHARED / "web" / "dclm_majority.jsonl.zst")]}
    out["declined_as_too_short"] = {}
    print("English texts declined as too short, by MIN_CHARS_TO_JUDGE")
    for name, group in english.items():
        size = np.array([len(t) for t in group])
        declined = {m: int((size < m).sum()) for m in PREFIXES}
        out["declined_as_too_short"][name] = {"texts": len(group), **{str(m): v for m, v in declined.items()}}
        print(f"  {name:13s} ({len(group):5d})  " + "  ".join(f"{m}: {v} ({v / len(group):.1%})"
                                                        for m, v in declined.items()))
    return out


def main() -> int:
    global SHARED
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="Write the figures as JSON here.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--windows", action="store_true", help="Accuracy and cost by judged window.")
    parser.add_argument("--lengths", action="store_true", help="The length rule's measurements (scores dev).")
    parser.add_argument("--model", default=None, help="Stack folder (default: the shipped one).")
    parser.add_argument("--threshold", type=float, default=0.9, help="For --lengths (default: 0.9).")
    parser.add_argument("--data", default=str(SHARED), help="The shared data folder (default: %(default)s).")
    args = parser.parse_args()
    SHARED = Path(args.data)
    if not (SHARED / "detector" / "multilingual.jsonl.zst").is_file():
        print(f"skipped: {SHARED} is absent (the shared data sits beside the checkout)")
        return 0
    identifier = language.LanguageIdentifier()
    print(f"language identification: {identifier.version}, first {language.MAX_CHARS} characters")
    sets = labelled_sets()
    report = {"model_sha256": language.MODEL_SHA256, "max_chars": language.MAX_CHARS,
              "right_language": right_language(identifier, sets)}
    texts_3kb = three_kb(sets)
    report["throughput"] = throughput(identifier, texts_3kb, args.repeats, args.model)
    if args.windows:
        report["windows"] = windows(identifier, sets, texts_3kb)
    if args.lengths:
        report["lengths"] = lengths(identifier, args.model, args.threshold)
    bar = report["right_language"]["multilingual (all)"]["right"]
    print(f"\nbar: multilingual right language >= 97%: {bar:.2%} ({'met' if bar >= 0.97 else 'NOT met'})")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
