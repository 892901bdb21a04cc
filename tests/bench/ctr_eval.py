#!/usr/bin/env python3
"""ctr_eval — tern's online CTR against a base-rate predictor and a reference
online learner, on the same Avazu rows and the same hashed features.

    python3 tests/bench/ctr_eval.py [--tern build/tern] [--data ../shared/data]
                                    [-X key=value ...]

One `tern replay` feeds train.csv, dev.csv and test.csv (in that order, in
file order) through the real pipeline with --ctr-trace: every example as
tern learned it (source offset, label, the p(click) tern PUBLISHED for the
impression before its label was known, the hashed feature indices). Then,
on those rows in file order and on exactly those indices, the reference
learner predicts before it learns, one row at a time:
python3-sklearn's SGDClassifier(loss="log_loss").partial_fit (apt install
python3-sklearn). It learns each label the moment the row is seen, which
favours it: tern learns a negative only when the attribution window closes.

Prints a table (progressive logloss, AUC, calibration for tern, the
constant base-rate predictor and the reference), tern's cost per example
(ns per score, ns per learned example, measured inside the pipeline), and
exits 1 if tern is not below the base rate or is worse than 1.02 x the
reference's logloss.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from churn_eval import auc  # noqa: E402  (one Mann-Whitney AUC for both evaluations)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
DEFAULT_X = ["ctr.attribution_window_seconds=10", "ctr.allowed_lateness_seconds=2"]


def logloss(ps, ys):
    total = 0.0
    for p, y in zip(ps, ys):
        p = min(max(p, 1e-15), 1 - 1e-15)
        total -= math.log(p) if y else math.log(1 - p)
    return total / len(ys)


def calibration(ps, ys):
    rate = sum(ys) / len(ys)
    return (sum(ps) / len(ps)) / rate if rate else float("nan")


def run_tern(args, work):
    d = args.data
    inputs = [os.path.join(d, "avazu", f) for f in ("train.csv", "dev.csv", "test.csv")]
    trace = os.path.join(work, "trace.txt")
    cmd = [args.tern, "replay", "--format", "avazu-csv", "--state-dir", os.path.join(work, "state"),
           "--ctr-trace", trace]
    for path in inputs:
        cmd += ["--input", path]
    for x in DEFAULT_X + (args.X or []):
        cmd += ["-X", x]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit("tern replay failed:\n" + out.stderr[-3000:])
    summary = json.loads(out.stdout)
    rows = []
    with open(trace) as f:
        for line in f:
            parts = line.split()
            rows.append((int(parts[0]), int(parts[1]), float(parts[2]), [int(x) for x in parts[3:]]))
    rows.sort(key=lambda r: r[0])  # file order (source offsets)
    return summary, rows, time.time() - t0


# The reference learners: sklearn's defaults (learning_rate "optimal",
# alpha 1e-4), whose first steps are huge on one-hot rows, and constant
# step sizes around the usual range; the best of them by logloss is "the
# reference" that tern must stay within 1.02x of.
REFERENCES = [
    ("sklearn SGD defaults", {}),
    ("sklearn SGD eta0=0.003", {"learning_rate": "constant", "eta0": 0.003, "alpha": 1e-6}),
    ("sklearn SGD eta0=0.01", {"learning_rate": "constant", "eta0": 0.01, "alpha": 1e-6}),
    ("sklearn SGD eta0=0.03", {"learning_rate": "constant", "eta0": 0.03, "alpha": 1e-6}),
]


def reference(rows, bits, params):
    try:
        import numpy as np
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import SGDClassifier
    except ImportError:
        sys.exit("the reference learner needs python3-sklearn (apt-get install python3-sklearn; "
                 "run it with the system python3)")
    model = SGDClassifier(loss="log_loss", random_state=0, **params)
    classes = np.array([0, 1])
    ps = []
    t0 = time.time()
    for k, (_, y, _, idx) in enumerate(rows):
        x = csr_matrix((np.ones(len(idx)), (np.zeros(len(idx), dtype=int), idx)), shape=(1, 1 << bits))
        ps.append(float(model.predict_proba(x)[0, 1]) if k else 0.5)
        model.partial_fit(x, np.array([y]), classes=classes)
    return ps, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", default=os.path.join(SRC, "build", "tern"))
    ap.add_argument("--data", default=os.path.join(SRC, "..", "shared", "data"))
    ap.add_argument("--bits", type=int, default=20, help="ctr.hash_bits of the run (default 20)")
    ap.add_argument("-X", action="append", help="extra tern config override")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctr-eval-") as work:
        summary, rows, tern_secs = run_tern(args, work)
    ys = [r[1] for r in rows]
    tern_ps = [r[2] for r in rows]
    rate = sum(ys) / len(ys)
    base_ll = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    ctr = summary["ctr"]
    table = [
        ("tern FTRL (published p)", logloss(tern_ps, ys), auc(tern_ps, ys), calibration(tern_ps, ys)),
        ("constant base rate", base_ll, 0.5, 1.0),
    ]
    ref_secs = 0.0
    for name, params in REFERENCES:
        ref_ps, secs = reference(rows, args.bits, params)
        ref_secs += secs
        table.append((name, logloss(ref_ps, ys), auc(ref_ps, ys), calibration(ref_ps, ys)))
    best_ref = min(table[2:], key=lambda row: row[1])
    print("Avazu train+dev+test: %d examples resolved, %d positives (rate %.4f)" % (len(ys), sum(ys), rate))
    print("%-26s %9s %7s %11s" % ("predictor", "logloss", "AUC", "calibration"))
    for name, ll, a, cal in table:
        print("%-26s %9.5f %7.4f %11.3f" % (name, ll, a, cal))
    ratio = table[0][1] / best_ref[1]
    print("tern / best reference (%s) logloss: %.4f   tern / base-rate logloss: %.4f"
          % (best_ref[0], ratio, table[0][1] / base_ll))
    print("tern's own report: logloss %.5f auc %.4f (binned) calibration %.3f"
          % (ctr["logloss"], ctr["auc"], ctr["calibration"]))
    print("tern cost per example: score %d ns, learn %d ns; whole replay %.1f s (%d events);"
          " references %.1f s" % (ctr["ns_per_score"], ctr["ns_per_learn"], tern_secs,
                                 summary["events_in"], ref_secs))
    ok = table[0][1] < base_ll and ratio <= 1.02
    print("PASS" if ok else "FAIL: tern must beat the base rate and stay within 1.02 x the reference")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
