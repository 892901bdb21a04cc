"""0016-churn_replay: churn scoring through the real pipeline.

A generated stream (fixed seed, jsonl): users arrive over 60 days of event
time, visit with their own mean gap (0.2-3 days) and leave for good with a
small chance after each visit. churn.inactive_days is 2 here.

 - drift: in the "change" stream, at day 30 (a known event index), 60% of
   the users active then stop for good (a new app version, say): a
   model-alert must fire after that event and within a bounded number of
   events; the same generator without the change (same seed, same length)
   raises none.
 - resume: a replay SIGKILLed midway and resumed ends with the same model
   (`tern inspect model churn`, every weight and metric) and the same
   churn alerts as an uninterrupted one.
"""
import json
import os
import random
import signal
import subprocess
import time

from ternlib import TERN, Tests, committed, run, start, workdir

SEED = 4711
DAY = 86400000
T0 = 1700000000000
HORIZON_DAYS = 60
CHANGE_DAY = 30
CHURN = ["-X", "churn.inactive_days=2", "-X", "churn.score_interval_days=0.5",
         "-X", "churn.min_score_gap_seconds=600", "-X", "churn.drift_min_labels=500",
         "-X", "churn.drift_psi_threshold=0", "-X", "recommendations.top_n=0"]
# PSI is off here: the generated shop's population grows from nothing, so
# its score distribution shifts in both streams; Page-Hinkley on the error
# stream is what this test holds to "fires after the change, never without".
LENGTH = 34000  # both streams cut to the same length
BOUND = 15000  # events after the change within which a model-alert must fire


def generate(path, change):
    rng = random.Random(SEED)
    events = []
    for u in range(1500):
        t = rng.uniform(0, HORIZON_DAYS * 0.8) * DAY
        gap = rng.uniform(0.2, 3.0) * DAY
        stops_at_change = rng.random() < 0.6
        while t < HORIZON_DAYS * DAY:
            if change and stops_at_change and t >= CHANGE_DAY * DAY:
                break
            for k in range(rng.randint(1, 3)):
                etype = rng.choice(["VIEW", "VIEW", "CART", "PURCHASE"])
                events.append((int(t) + k * 60000, "u%04d" % u, etype))
            if rng.random() < 0.03:
                break
            t += rng.expovariate(1.0 / gap)
    events.sort()
    events = events[:LENGTH]
    change_index = next((i for i, e in enumerate(events) if e[0] >= CHANGE_DAY * DAY), len(events))
    with open(path, "w") as f:
        for i, (t, user, etype) in enumerate(events):
            f.write(json.dumps({"event_id": "e%d" % i, "user_id": user, "item_id": "i%d" % (i % 50),
                                "category_id": None, "event_type": etype, "ts_ms": T0 + t,
                                "price": 10.0 if etype == "PURCHASE" else None, "quantity": None,
                                "impression_id": None, "campaign_id": None, "context": {}}) + "\n")
    return len(events), change_index


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line torn by SIGKILL
    return out



class Churn(Tests):
    def __init__(self):
        self.work = workdir("churn")

    def replay(self, name, path, extra=()):
        state, emit = os.path.join(self.work, name), os.path.join(self.work, name + "-emit")
        out = run(["replay", "--format", "jsonl", "--input", path, "--state-dir", state, "--emit", emit]
                  + CHURN + list(extra), timeout=120)
        return json.loads(out.stdout), state, emit

    def test_drift(self):
        results = {}
        for change in (False, True):
            path = os.path.join(self.work, "change.jsonl" if change else "steady.jsonl")
            n, change_at = generate(path, change)
            summary, _, emit = self.replay("drift-%d" % change, path)
            alerts = read_jsonl(os.path.join(emit, "model-alerts.jsonl"))
            results[change] = (n, change_at, [a["source_offset"] for a in alerts], summary["churn"])
            print("change=%s: %d events, change at %d, model-alerts at %s, churn %s"
                  % (change, n, change_at, [(a["detector"], a["source_offset"]) for a in alerts],
                     json.dumps(summary["churn"])), flush=True)
        _, _, steady, _ = results[False]
        n, change_at, offsets, _ = results[True]
        assert not steady, "model-alerts on the stream without a change: %s" % steady
        assert offsets, "no model-alert after the change"
        assert offsets[0] >= change_at, "a model-alert at %d, before the change at %d" % (offsets[0], change_at)
        assert offsets[0] - change_at <= BOUND, "first model-alert %d events after the change" % (
            offsets[0] - change_at)

    def test_resume(self):
        path = os.path.join(self.work, "resume.jsonl")
        total, _ = generate(path, True)
        extra = ["-X", "batch.max_events=200", "-X", "state.sync_writes=true"]
        _, state_a, emit_a = self.replay("A", path, extra)
        # The kill must land mid-replay: on a busy machine the replay may
        # finish between two polls, so try again on fresh state.
        for attempt in range(3):
            state_b = os.path.join(self.work, "B%d" % attempt)
            emit_b = os.path.join(self.work, "B%d-emit" % attempt)
            args = ["replay", "--format", "jsonl", "--input", path, "--state-dir", state_b,
                    "--emit", emit_b] + CHURN + extra
            proc = start(args, os.path.join(self.work, "b1.log"))
            deadline = time.time() + 60
            while proc.poll() is None and committed(state_b) < total // 4 and time.time() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = committed(state_b)
            if 0 < killed < total:
                break
            print("attempt %d: the kill missed the replay (at %d of %d)" % (attempt, killed, total))
        assert 0 < killed < total, "kill at %d of %d" % (killed, total)
        run(args, timeout=120)
        model_a = json.loads(run(["inspect", "--state-dir", state_a, "model", "churn"]).stdout)
        model_b = json.loads(run(["inspect", "--state-dir", state_b, "model", "churn"]).stdout)
        assert model_a == model_b, "models differ after SIGKILL at %d:\nA %s\nB %s" % (killed, model_a, model_b)
        key = lambda a: json.dumps(a, sort_keys=True)
        alerts_a = {key(a) for a in read_jsonl(os.path.join(emit_a, "churn-alerts.jsonl"))}
        alerts_b = {key(a) for a in read_jsonl(os.path.join(emit_b, "churn-alerts.jsonl"))}
        assert alerts_a, "no churn alerts at all"
        assert alerts_a == alerts_b, "alerts differ: %d only in A, %d only in B" % (
            len(alerts_a - alerts_b), len(alerts_b - alerts_a))
        print("killed at %d of %d; model equal (%d labels), %d alerts equal"
              % (killed, total, model_a["labelled"], len(alerts_a)), flush=True)


if __name__ == "__main__":
    Churn().main()
