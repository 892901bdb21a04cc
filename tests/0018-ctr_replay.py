"""0018-ctr_replay: online CTR through the real pipeline on the Avazu rows.

The Avazu sample (train, then dev, then test, in file order) is replayed:
every IMPRESSION gets a ctr-scores record before its label is known, clicks
join in event time, and the progressive validation of the published
predictions beats the constant base-rate predictor. Then the same replay
is SIGKILLed midway and resumed: the model's metrics and join counters end
exactly equal (to 1e-9) to the uninterrupted run's. A small jsonl stream
checks the join's outcomes through the pipeline (orphan, duplicate, late).

Skips cleanly when ../shared/data is absent (the jsonl part still runs).
"""
import json
import os
import signal
import subprocess
import time

from ternlib import TERN, Tests, committed, data_dir, event, inspect, run, start, workdir, write_jsonl

# A short attribution window suits the Avazu clock (rows 100 ms apart,
# clicks 2 s after their impression): negatives are learned ~12 s of event
# time (120 rows) after they were shown.
CTR = ["-X", "ctr.attribution_window_seconds=10", "-X", "ctr.allowed_lateness_seconds=2"]
METRIC_KEYS = ("examples", "positives", "logloss", "auc", "base_rate_logloss", "calibration")


def avazu_inputs():
    d = data_dir()
    if not d:
        return None
    files = [os.path.join(d, "avazu", f) for f in ("train.csv", "dev.csv", "test.csv")]
    return files if all(os.path.exists(f) for f in files) else None


def replay_args(inputs, state, extra=()):
    args = ["replay", "--format", "avazu-csv", "--state-dir", state]
    for path in inputs:
        args += ["--input", path]
    return args + CTR + list(extra)



def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-9
    return a == b


class CtrReplay(Tests):
    def __init__(self):
        self.work = workdir("ctr")
        self.inputs = avazu_inputs()
        self.reference = None

    def test_join_outcomes(self):
        """Orphan, duplicate and late clicks are counted, not learned."""
        t = 1700000000000
        evs = [
            event("e1", "u1", "i1", "IMPRESSION", t, impression_id="imp1",
                  context={"placement": "feed"}),
            event("e2", "u1", "i2", "IMPRESSION", t + 100, impression_id="imp2"),
            event("e3", "u1", "i1", "CLICK", t + 500, impression_id="imp1"),
            event("e4", "u1", "i1", "CLICK", t + 600, impression_id="imp1"),   # duplicate
            event("e5", "u2", "i9", "CLICK", t + 700, impression_id="nope"),   # orphan
            event("e6", "u1", "i2", "CLICK", t + 10200, impression_id="imp2"),  # after imp2's window
            event("e7", "u3", "i3", "IMPRESSION", t + 30000, impression_id="imp3"),
            event("e8", "u3", "i3", "IMPRESSION", t + 1000, impression_id="imp0"),  # late
        ]
        path = os.path.join(self.work, "join.jsonl")
        write_jsonl(path, evs)
        state, emit = os.path.join(self.work, "J"), os.path.join(self.work, "JE")
        s = json.loads(run(["replay", "--format", "jsonl", "--input", path, "--state-dir", state,
                            "--emit", emit] + CTR).stdout)
        ctr = s["ctr"]
        join = ctr["join"]
        assert join["positives"] == 1 and join["negatives"] == 1, ctr
        assert join["duplicate_clicks"] == 1 and join["orphan_clicks"] == 1, join
        assert join["late_clicks"] == 1 and join["late_impressions"] == 1, join
        assert join["pending"] == 1, join  # imp3: its window is still open
        assert ctr["examples"] == 2 and ctr["positives"] == 1, ctr
        with open(os.path.join(emit, "ctr-scores.jsonl")) as f:
            scores = [json.loads(line) for line in f]
        assert [r["impression_id"] for r in scores] == ["imp1", "imp2", "imp3", "imp0"], scores
        # labels are learned when windows close: imp1 and imp2 at e7, after
        # imp3 was scored
        assert [r["model_version"] for r in scores] == [0, 0, 0, 2], scores
        assert all(0 < r["p_click"] < 1 for r in scores), scores
        assert scores[0]["source_offset"] == 0 and scores[0]["user_id"] == "u1", scores[0]
        doc = inspect(state, "model", "ctr")
        assert doc["join"] == join and doc["examples"] == 2, doc

    def test_avazu_beats_base_rate(self):
        if not self.inputs:
            print("skipped: no ../shared/data/avazu")
            return
        state, emit = os.path.join(self.work, "A"), os.path.join(self.work, "AE")
        s = json.loads(run(replay_args(self.inputs, state, ["--emit", emit])).stdout)
        ctr = s["ctr"]
        print("avazu: %s" % json.dumps(ctr), flush=True)
        for key in METRIC_KEYS:
            assert key in ctr, (key, ctr)
        join = ctr["join"]
        # every row is an impression, and each got its score
        assert s["outputs"].get("ctr-scores", 0) == 8999, s
        assert join["impressions"] + join["late_impressions"] + join["duplicate_impressions"] == 8999, join
        # learned: every joined impression whose window closed
        assert ctr["examples"] + join["pending"] == join["impressions"], ctr
        assert ctr["examples"] > 8500, ctr
        assert ctr["logloss"] < ctr["base_rate_logloss"], ctr
        assert ctr["auc"] > 0.65, ctr
        assert 0.7 < ctr["calibration"] < 1.3, ctr
        doc = inspect(state, "model", "ctr")
        for key in METRIC_KEYS:
            assert close(doc[key], ctr[key]), (key, doc[key], ctr[key])
        self.reference = doc
        self.reference_state = state

    def test_sigkill_resume_same_model(self):
        if not self.inputs or not self.reference:
            print("skipped: needs the Avazu reference run")
            return
        slow = ["-X", "batch.max_events=50", "-X", "state.sync_writes=true"]
        # The kill must land mid-replay: a busy machine may let the replay
        # finish between two polls, so try again on fresh state.
        for attempt in range(3):
            state = os.path.join(self.work, "B%d" % attempt)
            proc = start(replay_args(self.inputs, state, slow), os.path.join(self.work, "b.log"))
            seen = 0
            deadline = time.time() + 60
            while proc.poll() is None and seen < 1000 and time.time() < deadline:
                seen = committed(state)
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            killed = proc.wait(timeout=30) == -signal.SIGKILL
            killed_at = committed(state)
            if killed and 0 < killed_at < 10562:
                break
            print("attempt %d: the kill missed the replay (stored offset %d)" % (attempt, killed_at))
        assert killed and 0 < killed_at < 10562, killed_at  # 10562 records in all
        s = json.loads(run(replay_args(self.inputs, state, slow)).stdout)
        assert s["resumed_from_offset"] == killed_at, (s, killed_at)
        doc = inspect(state, "model", "ctr")
        print("killed at %d; resumed model: %s" % (killed_at, json.dumps(doc)), flush=True)
        for key, want in self.reference.items():
            assert close(doc.get(key), want), (key, doc.get(key), want)
        # and every record of the state, models and offsets included
        want, got = inspect(self.reference_state, "digest"), inspect(state, "digest")
        print("digest: %s" % json.dumps(got), flush=True)
        assert want == got, (want, got)


if __name__ == "__main__":
    CtrReplay().main()
