"""Near-duplicate benchmark: a synthetic corpus with known families, exact ground truth, scoring.

    python bench/neardup_corpus.py build --docs 20000 --out DIR [--seed 0] [--fill splice|mix]
    python bench/neardup_corpus.py truth --corpus DIR/corpus.jsonl --threshold 0.8 --out DIR/truth.json
    python bench/neardup_corpus.py score --corpus DIR/corpus.jsonl --truth DIR/truth.json --predicted PRED.json
    python bench/neardup_corpus.py check --corpus DIR/corpus.jsonl [--limit 1500]   # prefix filter == brute force

Base texts: ../shared/data (detector train/dev, DCLM and Dolma pages), read at run time. ~55% of
documents are unique base texts, the rest families (original + 1-6 copies: token edits, sentence
swaps, boilerplate header/footer, format-only changes; some copies of copies), plus one page copied
1,000 times. Once the ~43k base texts run out, new base texts are made from old ones: by default
splices of two (30-70% of each), which overlap their sources enough that LSH proposes many pairs
that verification drops; with `--fill mix`, a sixth of each of six texts, which overlap nothing much
(Jaccard ~0.1 with a source), so they add almost no candidate pairs (the scaling corpus); below
~66k documents both build the same corpus.
Truth is defined only by `detectors.minhash.shingles` sets: all pairs with exact Jaccard >= t.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import io
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from fractions import Fraction
from itertools import combinations, product

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from detectors.minhash import MinHashConfig, jaccard, shingles  # noqa: E402
from pipeline.graph import union_find_labels  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
RATES = (0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3)
OPS = (("substitute", 0.2), ("insert", 0.15), ("delete", 0.15), ("reorder", 0.15), ("boilerplate", 0.15), ("format", 0.2))
HEADERS = (
    "Home | News | Sports | Business | Opinion | Culture | Subscribe now and get unlimited access to every story for just one dollar a week, cancel anytime.",
    "Skip to main content. This site uses cookies to improve your experience. By continuing to browse you agree to our use of cookies and our privacy policy.",
    "Posted by the editorial team in General Discussion. Reply to this thread, share it with your friends, or report it to a moderator if it breaks the forum rules.",
    "Advertisement. Continue reading below. Sign up for our free daily newsletter and get the top headlines delivered straight to your inbox every single morning.",
    "You are here: Home / Articles / Archive. Last updated a few minutes ago. Estimated reading time five minutes. Print this page or save it as a PDF for later.",
)
FOOTERS = (
    "Copyright all rights reserved. No part of this publication may be reproduced, distributed or transmitted in any form without the prior written permission of the publisher.",
    "Related posts: ten tips you need to know, the ultimate beginner guide, what experts say about it, and why everyone is talking about this right now. Leave a comment below.",
    "Share this: Facebook, Twitter, LinkedIn, Email, Print. Like this: like loading. Tags: news, update, featured, trending. Previous post. Next post. Back to top.",
    "About us | Contact | Careers | Advertise with us | Terms of service | Privacy policy | Accessibility | Sitemap. Follow us on social media for more updates and offers.",
    "Did you find this article helpful? Rate it from one to five stars and tell us what you think in the comments. Your feedback helps us write better content for readers like you.",
)
BOILERPLATE_PAGE = (
    "404 Page Not Found. Sorry, the page you are looking for does not exist, has been moved, or is "
    "temporarily unavailable. Please check the address for typing errors, go back to the previous page, "
    "or return to the home page. If you think this is an error, contact the site administrator."
)
PUNCT_SWAP = str.maketrans(".,;:!?", ",;:.?!")  # punctuation for punctuation: the shingle text is unchanged


# ----------------------------------------------------------------------------------- corpus builder
def _jsonl(path: str) -> list[dict]:
    if path.endswith(".zst"):
        import zstandard
        with open(path, "rb") as f:
            reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
            return [json.loads(line) for line in io.TextIOWrapper(reader, encoding="utf-8")]
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def load_pool(data: str) -> list[tuple[str, str]]:
    """(source, text) of every base text with at least 40 words, in file order; duplicates kept."""
    paths = [os.path.join(data, p) for p in ("detector/train.jsonl.zst", "detector/dev.jsonl.zst", "web/dclm_majority.jsonl.zst")]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"neardup_corpus: shared data not found ({os.path.abspath(missing[0])}); "
              "this benchmark reads ../shared/data (see its README.md)", file=sys.stderr)
        sys.exit(2)
    paths += sorted(glob.glob(os.path.join(data, "web", "dolma_cc_en_head-*.jsonl.gz")))
    pool = []
    for path in paths:
        name = os.path.relpath(path, data)
        for k, row in enumerate(_jsonl(path)):
            text = row.get("text")
            if isinstance(text, str) and len(text.split()) >= 40:
                pool.append((f"{name}:{row.get('id', k)}", text))
    return pool


def _edit_words(text: str, rng: random.Random, kind: str, rate: float, vocab: list[str]) -> tuple[str, int]:
    """Each word independently with probability `rate`; separators are kept, so layout survives."""
    out, edits = [], 0
    for tok in re.findall(r"\S+|\s+", text):
        if tok.isspace() or rng.random() >= rate:
            out.append(tok)
            continue
        edits += 1
        if kind == "substitute":
            out.append(rng.choice(vocab))
        elif kind == "insert":
            out.extend((tok, " ", rng.choice(vocab)))
        # delete: the word is dropped and its neighbouring separators stay
    return "".join(out), edits


def _reorder(text: str, rng: random.Random) -> str:
    """Swap two sentences (or, in text without sentence ends, two ~20-word spans)."""
    spans = re.split(r"(?<=[.!?])\s+", text.strip())
    if len(spans) < 3:
        words = text.split()
        spans = [" ".join(words[i:i + 20]) for i in range(0, len(words), 20)]
    if len(spans) < 2:
        return text
    i, j = sorted(rng.sample(range(len(spans)), 2))
    spans[i], spans[j] = spans[j], spans[i]
    return " ".join(spans)


def _format_noise(text: str, rng: random.Random) -> str:
    """Whitespace, case (ASCII only: 'ß'.upper() would change the shingles) and punctuation changes."""
    out = []
    for tok in re.findall(r"\S+|\s+", text):
        r = rng.random()
        if tok.isspace():
            tok = rng.choice((" ", "  ", "\n", " \t ")) if r < 0.15 else tok
        elif r < 0.05 and tok.isascii():
            tok = tok.upper()
        elif r < 0.10 and tok.isascii():
            tok = tok.lower() if tok[:1].isupper() else tok.capitalize()
        elif r < 0.20:
            tok = tok.translate(PUNCT_SWAP) + (rng.choice(",;:") if r < 0.13 else "")
        out.append(tok)
    return "".join(out)


def _copy(parent: str, rng: random.Random, vocab: list[str]) -> tuple[str, dict]:
    op = rng.choices([o for o, _ in OPS], [w for _, w in OPS])[0]
    if op in ("substitute", "insert", "delete"):
        rate = rng.choice(RATES)
        text, edits = _edit_words(parent, rng, op, rate, vocab)
        return text, {"op": op, "rate": rate, "edits": edits}
    if op == "reorder":
        return _reorder(parent, rng), {"op": op}
    if op == "boilerplate":
        head = rng.randrange(len(HEADERS)) if rng.random() < 0.67 else None
        foot = rng.randrange(len(FOOTERS)) if head is None or rng.random() < 0.5 else None
        text = (HEADERS[head] + "\n\n" if head is not None else "") + parent + ("\n\n" + FOOTERS[foot] if foot is not None else "")
        return text, {"op": op, "header": head, "footer": foot}
    return _format_noise(parent, rng), {"op": "format"}


FILLS = ("splice", "mix")
MIX_SOURCES = 6


def build(n_docs: int, out: str, seed: int = 0, data: str = DATA, fill: str = "splice") -> dict:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
    rng = random.Random(seed)
    pool = load_pool(data)
    rng.shuffle(pool)
    # distinct words (sorted, so the choice is deterministic) for substitutions and insertions
    vocab = sorted({w for _, t in pool[:2000] for w in re.findall(r"[A-Za-z]{3,}", t.lower())})
    fresh = iter(pool)

    def base() -> tuple[str, str]:
        nxt = next(fresh, None)
        if nxt is not None:
            return nxt
        if fill == "mix":  # a window of a sixth of each of six texts, in turn
            picked, words = rng.sample(pool, MIX_SOURCES), []
            for _, t in picked:
                w = t.split()
                width = max(1, len(w) // MIX_SOURCES)
                start = rng.randrange(len(w) - width + 1)
                words += w[start:start + width]
            return "mix(" + "|".join(s for s, _ in picked) + ")", " ".join(words)
        (sa, ta), (sb, tb) = rng.sample(pool, 2)  # pool exhausted: a splice keeps documents unique at t >= 0.7
        wa, wb = ta.split(), tb.split()
        ca, cb = int(len(wa) * rng.uniform(0.3, 0.7)), int(len(wb) * rng.uniform(0.3, 0.7))
        return f"splice({sa}|{sb})", " ".join(wa[:ca] + wb[cb:])

    docs: list[tuple[str, dict]] = []
    n_page = min(n_docs, 1000 if n_docs >= 20000 else max(10, round(1000 * n_docs / 20000)))
    docs += [(BOILERPLATE_PAGE, {"family": "page", "op": "exact"})] * n_page
    rest = n_docs - n_page
    n_unique = min(rest, round(0.55 * n_docs))
    remaining, families = rest - n_unique, 0
    while remaining > 0:
        size = min(1 + rng.randint(1, 6), remaining)
        if size == 1:
            n_unique += 1
            break
        family, (source, text) = f"f{families:06d}", base()
        members = [len(docs)]
        docs.append((text, {"family": family, "op": "original", "source": source}))
        for _ in range(size - 1):
            parent = rng.choice(members) if rng.random() < 0.3 else members[0]  # 30% chains off a copy
            copy, info = _copy(docs[parent][0], rng, vocab)
            members.append(len(docs))
            docs.append((copy, {"family": family, **info, "parent": parent}))
        families, remaining = families + 1, remaining - size
    for k in range(n_unique):
        source, text = base()
        docs.append((text, {"family": f"u{k:06d}", "op": "original", "source": source}))

    order = list(range(len(docs)))
    rng.shuffle(order)
    width = max(6, len(str(len(docs) - 1)))
    ids = {old: f"d{new:0{width}d}" for new, old in enumerate(order)}
    first, span = dt.date(2015, 1, 1).toordinal(), dt.date(2025, 12, 31).toordinal() - dt.date(2015, 1, 1).toordinal() + 1
    os.makedirs(out, exist_ok=True)
    book = {}
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for old in order:
            text, info = docs[old]
            row = {"id": ids[old], "text": text}
            if rng.random() < 0.7:
                row["date"] = dt.date.fromordinal(first + rng.randrange(span)).isoformat()
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            book[ids[old]] = {**info, "parent": ids[info["parent"]]} if "parent" in info else info
    with open(os.path.join(out, "families.json"), "w", encoding="utf-8") as f:
        json.dump(book, f, indent=0)
    made = sum(1 for v in book.values() if v.get("source", "").startswith(f"{fill}("))
    return {"documents": len(docs), "unique": n_unique, "families": families, "page_copies": n_page,
            "fill": fill, "made_texts": made, "base_texts": len(pool)}


# ----------------------------------------------------------------------------------- exact truth
def read_corpus(path: str) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r["id"] for r in rows], [r["text"] for r in rows]


def threshold_pairs(texts: list[str], threshold: float, config: MinHashConfig = MinHashConfig()) -> tuple[list[tuple[int, int, float]], dict]:
    """Every (i, j, J) with i < j and exact shingle-set Jaccard J >= threshold.

    Shingles are hashed to 64 bits for speed. Within each document the hashing is checked to be
    injective, so a hashed Jaccard is never below the true one (shared shingles stay shared;
    collisions across documents can only add overlap): every true pair is found as a candidate,
    and every candidate is then decided on the shingle strings, so the result is exact.
    """
    t = Fraction(str(threshold))  # exact arithmetic: J = 4/5 at t = 0.8 is in, not lost to rounding
    if not 0 < t <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    groups: dict[bytes, list[int]] = defaultdict(list)  # identical hashed sets are indexed once
    for i, text in enumerate(texts):
        strings = shingles(text, config)
        if strings:
            hashed = np.sort(np.fromiter((hash(s) for s in strings), np.int64, len(strings)))
            if np.any(hashed[1:] == hashed[:-1]):
                raise RuntimeError(f"64-bit shingle hash collision inside document {i}; rerun (new hash seed)")
            groups[hashed.tobytes()].append(i)
    keys = list(groups)
    sizes = np.array([len(k) // 8 for k in keys], dtype=np.int64)
    members = [groups[k] for k in keys]
    # global order: rarest shingle first (frequency over distinct sets), ties by hash value
    flat = np.frombuffer(b"".join(keys), dtype=np.int64)
    uniq, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.lexsort((uniq, counts))] = np.arange(len(uniq))
    owner = np.repeat(np.arange(len(keys), dtype=np.int64), sizes)
    ordered = np.sort(owner << 32 | rank[inverse]) & 0xFFFFFFFF  # each set's ranks, ascending, sets in key order
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    need = [-(-(t.numerator * int(s)) // t.denominator) for s in sizes]  # ceil(t * |s|)
    index: dict[int, list[int]] = defaultdict(list)
    candidates = 0
    hashed_pairs: list[tuple[int, int]] = []
    for g in np.argsort(sizes, kind="stable").tolist():  # ascending size: earlier sets are never larger
        ranks = ordered[bounds[g]:bounds[g + 1]]
        prefix = ranks[:int(sizes[g]) - need[g] + 1].tolist()
        seen = {h for tok in prefix for h in index.get(tok, ()) if sizes[h] >= need[g]}
        for h in seen:
            other = ordered[bounds[h]:bounds[h + 1]]
            inter = len(np.intersect1d(ranks, other, assume_unique=True))
            if inter * t.denominator >= t.numerator * (int(sizes[g]) + int(sizes[h]) - inter):
                hashed_pairs.append((h, g))
        candidates += len(seen)
        for tok in prefix:
            index[tok].append(g)
    # exact verification on the strings; documents of one hashed group are split by exact set
    exact: dict[int, dict[frozenset, list[int]]] = {}

    def parts(g: int) -> list[tuple[frozenset, list[int]]]:
        if g not in exact:
            exact[g] = defaultdict(list)
            for i in members[g]:
                exact[g][frozenset(shingles(texts[i], config))].append(i)
        return list(exact[g].items())

    pairs: list[tuple[int, int, float]] = []
    multi = [(g, g) for g in range(len(keys)) if len(members[g]) > 1]
    for h, g in multi + hashed_pairs:
        for (a, ma), (b, mb) in (combinations(parts(g), 2) if h == g else product(parts(h), parts(g))):
            inter = len(a & b)
            if inter * t.denominator >= t.numerator * (len(a) + len(b) - inter):
                pairs.extend((min(i, j), max(i, j), inter / (len(a) + len(b) - inter)) for i in ma for j in mb)
        if h == g:  # documents with the very same shingle strings
            pairs.extend((i, j, 1.0) for _, m in parts(g) for i, j in combinations(m, 2))
    pairs.sort()
    stats = {"documents": len(texts), "empty_shingle_sets": len(texts) - sum(map(len, members)),
             "distinct_sets": len(keys), "candidates": candidates}
    return pairs, stats


def clusters_from_pairs(pairs: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components of size >= 2, biggest first, members ascending."""
    labels = union_find_labels(np.array([p[0] for p in pairs], np.uint64), np.array([p[1] for p in pairs], np.uint64))
    comps: dict[int, list[int]] = defaultdict(list)
    for node in sorted(labels):
        comps[labels[node]].append(node)
    return sorted(comps.values(), key=lambda c: (-len(c), c[0]))


def truth(corpus: str, threshold: float, out: str) -> dict:
    started = time.perf_counter()
    ids, texts = read_corpus(corpus)
    pairs, stats = threshold_pairs(texts, threshold)
    clusters = clusters_from_pairs(pairs)
    stats.update(threshold_pairs=len(pairs), truth_clusters=len(clusters),
                 docs_in_clusters=sum(map(len, clusters)), biggest_cluster=len(clusters[0]) if clusters else 0)
    stats["share_in_clusters"] = round(stats["docs_in_clusters"] / max(1, len(ids)), 4)
    stats["seconds"] = round(time.perf_counter() - started, 1)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"threshold": threshold, "shingles": "detectors.minhash.shingles, MinHashConfig() defaults",
                   "stats": stats, "pairs": [[ids[i], ids[j], round(v, 6)] for i, j, v in pairs],
                   "clusters": [[ids[i] for i in c] for c in clusters]}, f)
    return stats


def brute_force_pairs(texts_by_id: dict[str, str], threshold: float) -> list[tuple[str, str, float]]:
    """All pairs compared directly: the reference the prefix filter is checked against."""
    sets = {k: shingles(v) for k, v in texts_by_id.items()}
    found = [(a, b, jaccard(sets[a], sets[b])) for a, b in combinations(sorted(sets), 2)]
    return [(a, b, j) for a, b, j in found if sets[a] and sets[b] and j >= threshold]


# ----------------------------------------------------------------------------------- scoring
def score(corpus_path: str, truth_path: str, predicted: dict[str, str]) -> dict:
    """Clustering-pair precision/recall, recall of threshold pairs, and purity of a predicted clustering."""
    ids, _ = read_corpus(corpus_path)
    with open(truth_path, encoding="utf-8") as f:
        gold = json.load(f)
    missing = [i for i in ids if i not in predicted]
    if missing:
        raise ValueError(f"{len(missing)} documents have no predicted cluster (first: {missing[0]})")
    label = {d: f"t{k}" for k, c in enumerate(gold["clusters"]) for d in c}
    truth_of = {d: label.get(d, "s" + d) for d in ids}  # truth singletons are their own clusters
    cells = Counter((predicted[d], truth_of[d]) for d in ids)
    pred_sizes, truth_sizes = Counter(predicted[d] for d in ids), Counter(truth_of.values())

    def pairs(counts) -> int:
        return sum(n * (n - 1) // 2 for n in counts)

    tp, pp, tt = pairs(cells.values()), pairs(pred_sizes.values()), pairs(truth_sizes.values())
    best: dict[str, int] = defaultdict(int)
    for (p, _), n in cells.items():
        best[p] = max(best[p], n)
    kept = sum(predicted[a] == predicted[b] for a, b, _ in gold["pairs"])
    precision, recall = tp / pp if pp else 1.0, tp / tt if tt else 1.0
    return {"pair_precision": precision, "pair_recall": recall,
            "pair_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "direct_pair_recall": kept / len(gold["pairs"]) if gold["pairs"] else 1.0,
            "purity": sum(best.values()) / len(ids) if ids else 1.0,
            "documents": len(ids), "predicted_pairs": pp, "truth_pairs": tt, "true_positive_pairs": tp,
            "threshold_pairs": len(gold["pairs"]), "threshold_pairs_together": kept,
            "predicted_clusters": sum(n > 1 for n in pred_sizes.values()), "truth_clusters": len(gold["clusters"])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    spec = {"build": ("--docs:int", "--out", "--seed:int=0", f"--data={DATA}", "--fill=splice"),
            "truth": ("--corpus", "--threshold:float=0.8", "--out"),
            "score": ("--corpus", "--truth", "--predicted"),
            "check": ("--corpus", "--threshold:float=0.8", "--limit:int=1500")}
    for cmd, options in spec.items():
        parser = sub.add_parser(cmd)
        for option in options:
            name, _, default = option.partition("=")
            name, _, kind = name.partition(":")
            parser.add_argument(name, type={"int": int, "float": float}.get(kind, str),
                                required=not default, default=default or None)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(json.dumps(build(args.docs, args.out, args.seed, args.data, args.fill)))
    elif args.cmd == "truth":
        print(json.dumps(truth(args.corpus, args.threshold, args.out)))
    elif args.cmd == "score":
        with open(args.predicted, encoding="utf-8") as f:
            print(json.dumps(score(args.corpus, args.truth, json.load(f)), indent=1))
    else:  # the prefix filter against brute force on the first --limit documents
        ids, texts = (x[:args.limit] for x in read_corpus(args.corpus))
        fast = [(ids[i], ids[j], v) for i, j, v in threshold_pairs(texts, args.threshold)[0]]
        slow = brute_force_pairs(dict(zip(ids, texts)), args.threshold)
        same = sorted(fast) == sorted(slow)
        print(f"check: {len(ids)} documents, prefix filter {len(fast)} pairs, brute force {len(slow)} pairs: "
              f"{'identical' if same else 'DIFFERENT'}")
        sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
