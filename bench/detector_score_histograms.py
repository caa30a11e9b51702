"""Write a model folder's score_histograms.json: held-out probabilities per class, binned.

    .venv/bin/python bench/detector_data.py --out /tmp/firsthand-detector-data
    .venv/bin/python bench/detector_score_histograms.py --model detectors/data/model \
        --data /tmp/firsthand-detector-data/dev.jsonl.zst /tmp/firsthand-detector-data/web_validation.jsonl.zst

The pipeline reads the detector's true and false positive rates at its threshold from this
file to turn the share of documents it flags into an estimate of the machine-written share
(detectors/prevalence.py). Texts the language gate declines get no probability in a run, so
they are left out here too. The file records the data it was measured on and the stack's
digest; the run reports the rates only when that digest is the loaded stack's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.evaluation import score_texts  # noqa: E402
from detectors.labelled import read_labelled  # noqa: E402
from detectors.prevalence import BINS, HISTOGRAMS_FILE, histograms, rates_at  # noqa: E402
from detectors.stack import load_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, nargs="+", help="held-out labelled JSON Lines (not training data)")
    args = parser.parse_args()
    stack = load_stack(args.model)
    data = read_labelled(args.data)
    probability, docs_per_s, supported = score_texts(stack, data.texts)
    y = np.asarray(data.labels, dtype=bool)[supported]
    counts = histograms(probability[supported], y)
    sources = [{"file": Path(p).name, "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()} for p in args.data]
    out = {"bins": BINS, "stack_sha256": stack.digest, "measured_on": sources,
           "texts": int(len(data)), "declined_by_language_gate": int((~supported).sum()), **counts}
    Path(args.model, HISTOGRAMS_FILE).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    threshold = stack.threshold["value"]
    at = rates_at(counts, threshold)
    print(json.dumps({"written": str(Path(args.model, HISTOGRAMS_FILE)), "machine": at.machine, "human": at.human,
                      "threshold": threshold, "tpr": round(at.tpr, 4), "fpr": round(at.fpr, 4),
                      "docs_per_s": round(docs_per_s)}, indent=1))


if __name__ == "__main__":
    main()
