#!/usr/bin/env python3
"""churn_eval: tern's churn model against simple rules on CDNOW (stdlib only).

    python3 tests/bench/churn_eval.py [--tern build/tern] [--data DIR]
        [--work DIR] [--reuse] [-X key=value]...

CDNOW_master.txt is sorted by customer, not by time; a stream is in time
order, and tern's timers run on event time (a partition's watermark), so
the script first writes a copy sorted by date (stable: file order within
a day) and replays that with `--format cdnow`, the default config and
--emit. From the emitted churn-scores it computes, on the SAME scoring
points, each point's label from the data itself (1 when the customer
makes no purchase in (t, t + inactive_days], 0 when they do; points whose
window ends after the last day of the data are left out, whatever follows
them: near the end only a return can be seen, so keeping those would
label them all 0 and favour whatever scores late points low):
  - tern's AUC (the risk published at the point, before its label was known)
  - rule "recency": days since the previous purchase (none before: longest)
  - rule "1/frequency": 1 / purchase days so far
and, from churn-alerts: the number of alerts, their precision (an alert at
a, the customer's last purchase L <= a, is right when no purchase follows
in (L, L + inactive_days]: the silence it warned about became churn) and
the lead time (L + inactive_days - a: days between the alert and the end
of the inactivity window that confirmed it). Prints one JSON object.
"""
import argparse
import bisect
import collections
import json
import os
import subprocess
import sys

DAY = 86400000


def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def load(path):
    rows = []
    with open(path) as f:
        for k, line in enumerate(f):
            p = line.split()
            if len(p) != 4:
                continue
            ymd = int(p[1])
            ts = days_from_civil(ymd // 10000, ymd // 100 % 100, ymd % 100) * DAY
            rows.append((ts, k, line.rstrip("\n")))
    rows.sort()
    buys = collections.defaultdict(list)
    for ts, _, line in rows:
        u = line.split()[0]
        if not buys[u] or buys[u][-1] != ts:
            buys[u].append(ts)
    return rows, buys


def auc(scores, labels):
    """Mann-Whitney AUC with average ranks for ties."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return 0.5
    rsum = sum(r for r, y in zip(ranks, labels) if y)
    return (rsum - pos * (pos + 1) / 2.0) / (pos * neg)


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--tern", default=os.path.join(src, "build", "tern"))
    ap.add_argument("--data", default=os.path.join(src, "..", "shared", "data", "cdnow"))
    ap.add_argument("--work", default=os.path.join(src, "build", "tmp", "churn-eval"))
    ap.add_argument("--reuse", action="store_true", help="use the last run's emitted files")
    ap.add_argument("--inactive-days", type=float, default=90, help="must match churn.inactive_days")
    ap.add_argument("-X", action="append", default=[], help="tern config override")
    a = ap.parse_args()

    rows, buys = load(os.path.join(a.data, "CDNOW_master.txt"))
    end = rows[-1][0]
    inactive = int(a.inactive_days * DAY)
    os.makedirs(a.work, exist_ok=True)
    emit = os.path.join(a.work, "emit")
    summary = None
    if not a.reuse:
        sorted_path = os.path.join(a.work, "cdnow_by_date.txt")
        with open(sorted_path, "w") as f:
            f.write("\n".join(r[2] for r in rows))
        state = os.path.join(a.work, "state")
        subprocess.run(["rm", "-rf", state, emit], check=True)
        args = [a.tern, "replay", "--format", "cdnow", "--input", sorted_path, "--state-dir", state,
                "--emit", emit]
        for x in a.X:
            args += ["-X", x]
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode:
            sys.exit("tern replay failed: " + out.stderr[-2000:])
        summary = json.loads(out.stdout)

    risks, labels, rec, freq = [], [], [], []
    by_trigger = collections.Counter()
    for s in read_jsonl(os.path.join(emit, "churn-scores.jsonl")):
        t = buys[s["user_id"]]
        ts = s["ts_ms"]
        nxt = bisect.bisect_right(t, ts)
        if ts + inactive >= end:
            continue
        y = 0 if nxt < len(t) and t[nxt] <= ts + inactive else 1
        # previous purchase: before the point's own purchase for an event,
        # the last one for a sweep
        k = bisect.bisect_left(t, ts) if s["trigger"] == "event" else nxt
        rec.append((ts - t[k - 1]) / DAY if k > 0 else float("inf"))
        freq.append(1.0 / max(1, nxt))
        risks.append(s["risk"])
        labels.append(y)
        by_trigger[s["trigger"]] += 1

    alerts = read_jsonl(os.path.join(emit, "churn-alerts.jsonl"))
    right = wrong = 0
    leads = []
    for al in alerts:
        t = buys[al["user_id"]]
        a_ts = al["ts_ms"]
        k = bisect.bisect_right(t, a_ts)
        last = t[k - 1]
        window_end = last + inactive
        if k < len(t) and t[k] <= window_end:
            wrong += 1
        elif window_end < end:
            right += 1
            leads.append((window_end - a_ts) / DAY)
    leads.sort()
    report = {
        "points": len(labels), "by_trigger": dict(by_trigger), "positives": sum(labels),
        "auc": {"tern": round(auc(risks, labels), 4), "recency": round(auc(rec, labels), 4),
                "inverse_frequency": round(auc(freq, labels), 4)},
        "alerts": len(alerts), "alerts_resolved": right + wrong,
        "alert_precision": round(right / (right + wrong), 4) if right + wrong else None,
        "lead_days": {"mean": round(sum(leads) / len(leads), 1) if leads else None,
                      "median": leads[len(leads) // 2] if leads else None},
        "model_alerts": len(read_jsonl(os.path.join(emit, "model-alerts.jsonl"))),
    }
    if summary:
        report["tern_summary_churn"] = summary.get("churn")
        report["replay_seconds"] = summary.get("seconds")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
