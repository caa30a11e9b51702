"""The run report's page: figures (pipeline.report.build_figures) in, one HTML string out."""
from __future__ import annotations

import json
from html import escape
from typing import Any

from pipeline import report_svg as svg

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:980px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:32px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:16px 0 4px}.muted{color:#666}.small{font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee;
vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:12px}.cell{background:#fff;border:1px solid #e4e4e4;padding:6px}
.key{margin-right:14px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
blockquote{margin:4px 0 10px;padding:4px 10px;background:#fff;border-left:3px solid #ccc;font-size:12px}
nav a{margin-right:12px}.big{font-size:20px;font-weight:600}
"""


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    def cell(tag: str, i: int, value: Any) -> str:
        return f'<{tag}{" class=n" if i in numeric else ""}>{value}</{tag}>'
    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _summary(f: dict[str, Any]) -> str:
    c = f["counts"]
    rows = [["read", f'{c["read"]:,}'], ["kept", f'{c["kept"]:,}'], ["rejected", f'{c["rejected"]:,}'],
            *[[f"&nbsp;&nbsp;{escape(k)}", f"{v:,}"] for k, v in sorted(c["rejected_by_reason"].items())],
            ["errors", f'{c["errors"]:,}'],
            *[[f"&nbsp;&nbsp;{escape(k)}", f"{v:,}"] for k, v in sorted(c["errors_by_kind"].items())]]
    share = f["share"]
    headline = (f'<p><span class="big">{_pct(share["estimate"])}</span> estimated machine-written share of the '
                f'input (95% CI {_pct(share["ci95"][0])}-{_pct(share["ci95"][1])})</p>' if share else "")
    return headline + _table(["documents", "count"], rows, {1})


def _probability(f: dict[str, Any]) -> str:
    p = f["probability"]
    if not p["scored"]:
        return "<p>No document has a synthetic probability (detectors off, or nothing they could judge).</p>"
    marker = p["threshold"]
    meaning = ("documents at or above it are rejected" if p.get("policy") == "reject"
               else "the run weighted documents by 1 - probability instead of rejecting them")
    out = [f'<p>{p["scored"]:,} scored documents; the dashed line is the threshold {marker} ({meaning}).</p>',
           svg.histogram(p["histogram"], "synthetic probability, all scored documents", marker=marker,
                         marker_label=f"threshold {marker}")]
    for label, groups in p["by_group"].items():
        if groups:
            out.append(f"<h3>By {label}</h3><div class=grid>")
            out += [f'<div class=cell><div class=small>{escape(g)} ({sum(h):,})</div>'
                    + svg.histogram(h, f"synthetic probability, {label} {g}", marker=marker, width=300, height=110)
                    + "</div>" for g, h in groups.items()]
            out.append("</div>")
    return "".join(out)


def _excerpt(text: str, chars: int = 280) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars] + "…"


def _quote(row: dict[str, Any]) -> str:
    p = row.get("synthetic_probability")
    evidence = f' · evidence: "{escape(row["synthetic_evidence"])}"' if row.get("synthetic_evidence") else ""
    if row.get("dup_is_representative") is False:
        evidence += f' · kept copy: {escape(str(row["dup_cluster_id"]))}'
    return (f'<blockquote><span class="muted">{escape(str(row["id"]))} · probability '
            f'{"n/a" if p is None else f"{p:.2f}"}{evidence}</span><br>{escape(_excerpt(row["text"]))}</blockquote>')


def _most_first(counts: dict[str, int]) -> list[tuple[str, list[int]]]:
    """Named counts as bar rows, largest first (ties keep the manifest's order)."""
    return sorted(((k, [v]) for k, v in counts.items()), key=lambda r: -r[1][0])


def _rejections(f: dict[str, Any]) -> str:
    c = f["counts"]
    out = []
    if c["rejected_by_reason"]:
        out.append(svg.bars(_most_first(c["rejected_by_reason"]), "rejected documents by reason"))
    if f["drivers"]:
        out.append("<h3>Signals that set the documents rejected as synthetic apart from the kept ones</h3>"
                   "<p class=small>Difference of means in standard deviations of all scored documents.</p>")
        out.append(svg.bars([(f'{n} ({"higher" if d > 0 else "lower"})', [abs(d)]) for n, d in f["drivers"]],
                            "signal differences, rejected as synthetic vs kept"))
    if c["flags"]:
        out.append("<h3>Flags that fired</h3>")
        out.append(svg.bars(_most_first(c["flags"]), "flags"))
    for title, examples in (("Examples by reason", f["reason_examples"]), ("Examples by flag", f["flag_examples"])):
        if examples:
            out.append(f"<h3>{title}</h3>")
            for name, rows in examples.items():
                out.append(f"<p><b>{escape(name)}</b></p>" + "".join(_quote(r) for r in rows))
    return "".join(out) or "<p>Nothing was rejected or flagged.</p>"


def _clusters(f: dict[str, Any]) -> str:
    c = f["clusters"]
    out = [f'<p>{c["with_duplicates"]:,} clusters with more than one document.</p>']
    if c["sizes"]:
        scope = "" if f["sample"]["exhaustive"] else " (clusters whose kept copy is in the sample)"
        out.append(f"<h3>Cluster sizes{scope}</h3>"
                   + svg.bars([(size, [n]) for size, n in c["sizes"]], "duplicate clusters by size"))
    if c["largest"]:
        out.append("<h3>Largest clusters</h3>" + _table(
            ["documents", "kept copy", "excerpt"],
            [[f'{x["size"]:,}', escape(str(x["cluster_id"])), escape(x.get("excerpt", ""))] for x in c["largest"]],
            {0}))
    return "".join(out)


def _composition(f: dict[str, Any]) -> str:
    out = ["<p>" + svg.legend(["input", "kept"]) + "</p>"]
    for label, rows in f["composition"].items():
        if rows:
            out.append(f"<h3>By {label}</h3>" + svg.bars(rows, f"composition by {label}, input vs kept",
                                                         series=["input", "kept"], as_share=True))
    return "".join(out)


def _tails(f: dict[str, Any]) -> str:
    t = f["tails"]
    if not t:
        return "<p>No kept text to compare.</p>"
    i, k = t["input"], t["kept"]
    rows = [["tokens compared", f'{i["tokens"]:,}', f'{k["tokens"]:,}'],
            ["distinct words", f'{i["vocabulary"]:,}', f'{k["vocabulary"]:,}'],
            ["tail mass (tokens outside the 1,000 most common words of both)", _pct(i["tail_mass"]),
             _pct(k["tail_mass"])],
            *[[f"distinct {n}-grams / {n}-grams", f'{i["distinct"][n]:.3f}', f'{k["distinct"][n]:.3f}']
              for n in i["distinct"]],
            ["Zipf slope (ranks 1-1,000)", f'{i["zipf_slope"]:.3f}', f'{k["zipf_slope"]:.3f}']]
    return ("<p>The rare words and phrasings are what recursive training loses first; a filter should not "
            "thin them itself. Both columns count the same number of tokens, from each document's first 1,000 "
            "characters, in one fixed shuffled order. Lower tail mass, fewer distinct "
            "n-grams or a steeper (more negative) slope in the kept output mean the filter cut into the tail.</p>"
            + _table(["", "input", "kept"], rows, {1, 2})
            + "<p>" + svg.legend(["input", "kept"]) + "</p>"
            + svg.loglog_lines({"input": i["rank_frequency"], "kept": k["rank_frequency"]},
                               "rank-frequency of words, input vs kept"))


def _share(f: dict[str, Any]) -> str:
    share, rates = f["share"], f["held_out_rates"]
    if not share:
        return ("<p>No estimate: the detectors were off, or the model has no held-out rates measured for it "
                "(run bench/detector_score_histograms.py).</p>")
    low, high = share["ci95"]
    return (f'<p>Estimate {_pct(share["estimate"])} (95% CI {_pct(low)}-{_pct(high)}) over '
            f'{share["documents"]:,} documents with a probability. Of them {_pct(share["flagged_share"])} are at or '
            f'above the threshold {rates["threshold"]}; corrected for the detector\'s held-out true positive rate '
            f'{_pct(rates["tpr"])} and false positive rate {_pct(rates["fpr"])} (adjusted classify-and-count), the '
            f"share of machine-written text in the input is the estimate.</p>"
            + svg.interval(share["estimate"], low, high, share["flagged_share"], "machine-written share with 95% CI"))


SECTIONS = (("summary", "Summary", _summary), ("probability", "Synthetic probability", _probability),
            ("rejections", "What drove rejections", _rejections), ("clusters", "Duplicate clusters", _clusters),
            ("composition", "Composition before and after", _composition),
            ("tails", "Tail retention", _tails), ("share", "Machine-written share", _share))


def render(figures: dict[str, Any], output: str, csp: str) -> str:
    run, sample = figures["run"], figures["sample"]
    scope = (f'all {sample["documents"]:,} documents' if sample["exhaustive"]
             else f'a sample of {sample["rows"]:,} of {sample["documents"]:,} documents (the same fraction of every '
                  f'table, from row groups spread evenly over the shards)')
    data = json.dumps({k: figures[k] for k in ("counts", "sample", "share", "tails")}, sort_keys=True)
    body = "".join(f'<h2 id="{key}">{title}</h2>{make(figures)}' for key, title, make in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>firsthand run report: {escape(output)}</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>firsthand run report</h1>"
            f'<p class="muted">{escape(output)} · {escape(str(run["status"]))} · mode {escape(run["mode"])} · '
            f'{escape(str(run["started_at"]))} to {escape(str(run["finished_at"]))} · firsthand '
            f'{escape(str(run["firsthand_version"]))}, schema {escape(str(run["schema_version"]))}</p>'
            f'<p class="small muted">Counts, reasons, flags, clusters and the share estimate are the manifest\'s. '
            f"Distributions, composition, examples, cluster sizes and tail retention are computed from {scope}.</p>"
            f"<nav>{''.join(f'<a href=#{k}>{escape(t)}</a>' for k, t, _ in SECTIONS)}</nav>{body}"
            f'<script type="application/json" id="firsthand-report-data">{data.replace("</", "<" + chr(92) + "/")}'
            f"</script></main></body></html>")
