"""0013-replay_resume: a replay SIGKILLed midway (twice) and resumed ends
in exactly the state of an uninterrupted replay of the same file.

The input is generated here (fixed seed, no ../shared/data): ~60k jsonl
events of 2000 users on 3000 Zipf-skewed items, VIEW/CART/PURCHASE/
FAVORITE plus IMPRESSIONs, some events without an item, a few invalid
ones (dead letters), event time increasing.

Reference A: one uninterrupted `tern replay`. B: the same replay killed
with SIGKILL once its stored offsets pass 10000, started again and killed
again further on, then run to completion. State must be equal (every item
with all its neighbours, a sample of users, their recommendations, the
offsets): nothing lost, nothing counted twice. Outputs are at least once:
every (user_id, source_offset) record of A is in B, B has nothing else,
and a record re-published after the crash equals the reference one.
"""
import collections
import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ternlib import TERN, Tests, run, start, wait_until, workdir

SEED = 20240601
EVENTS = 60000
USERS = 2000
ITEMS = 3000
T0 = 1700000000000
# Small batches so a kill lands between many commits; 1 MiB memtables so
# each read-only `inspect` replays a short WAL (tern does not flush on exit).
COMMON = ["--format", "jsonl", "-X", "batch.max_events=500", "-X", "state.write_buffer_mb=1"]
SAMPLE_USERS = 50


def generate(path):
    """Write the input; return (number of records, number of invalid ones)."""
    rng = random.Random(SEED)
    items = ["i%04d" % k for k in range(ITEMS)]
    weights = [1.0 / (k + 1) ** 1.1 for k in range(ITEMS)]      # Zipf-like skew
    users = ["u%04d" % k for k in range(USERS)]
    types = ["VIEW"] * 66 + ["CART"] * 8 + ["PURCHASE"] * 4 + ["FAVORITE"] * 6 + ["IMPRESSION"] * 16
    picks = rng.choices(items, weights=weights, k=EVENTS)
    ts = T0
    invalid = 0
    with open(path, "w") as f:
        for k in range(EVENTS):
            ts += rng.randint(0, 400)
            etype = rng.choice(types)
            item = None if rng.random() < 0.01 else picks[k]
            ev = {"event_id": "e%d" % k, "user_id": rng.choice(users), "item_id": item,
                  "category_id": None if item is None else "c%d" % (int(item[1:]) % 50),
                  "event_type": etype, "ts_ms": ts, "price": None, "quantity": None,
                  "impression_id": None, "campaign_id": None, "context": {}}
            if etype == "PURCHASE":
                ev["price"] = round(rng.uniform(1, 200), 2)
                ev["quantity"] = rng.randint(1, 3)
            if etype == "IMPRESSION":
                ev["impression_id"] = "imp%d" % k
            if k % 9973 == 5000:           # a few invalid events: dead letters
                ev["user_id"] = ""
                invalid += 1
            f.write(json.dumps(ev) + "\n")
    return EVENTS, invalid


def tern_json(args, timeout=120):
    return json.loads(run(args, timeout=timeout).stdout)


def committed(state):
    """Next offset stored with the state, 0 when there is none (yet)."""
    proc = subprocess.run([TERN, "inspect", "--state-dir", state, "offsets"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return 0
    try:
        offsets = json.loads(proc.stdout)["offsets"]
    except ValueError:
        return 0
    return sum(o["next_offset"] for o in offsets)


def read_emit(path):
    """(key -> [line, ...], number of lines, number of unparsable lines)."""
    by_key = collections.defaultdict(list)
    lines = bad = 0
    if not os.path.exists(path):
        return by_key, 0, 0
    with open(path) as f:
        for line in f:
            lines += 1
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1
                continue
            by_key[(rec.get("user_id"), rec["source_partition"], rec["source_offset"])].append(
                json.dumps(rec, sort_keys=True))
    return by_key, lines, bad


class Resume(Tests):
    def __init__(self):
        self.work = workdir("resume")
        self.input = os.path.join(self.work, "events.jsonl")
        self.total, self.invalid = generate(self.input)
        self.a, self.ea = os.path.join(self.work, "A"), os.path.join(self.work, "EA")
        self.b, self.eb = os.path.join(self.work, "B"), os.path.join(self.work, "EB")
        self.kills = []

    def replay_args(self, state, emit):
        return ["replay", "--input", self.input, "--state-dir", state, "--emit", emit] + COMMON

    def test_reference(self):
        s = tern_json(self.replay_args(self.a, self.ea))
        print("reference: %s" % json.dumps(s), flush=True)
        assert s["records_in"] == self.total and s["committed_offset"] == self.total, s
        assert s["resumed_from_offset"] == 0, s
        assert s["dead_lettered"] == self.invalid, s
        assert s["outputs"]["recommendations"] > 0, s

    def kill_when(self, at_least, log):
        """Start the replay into B, SIGKILL it once its stored offsets pass at_least."""
        before = committed(self.b)
        proc = start(self.replay_args(self.b, self.eb), os.path.join(self.work, log))
        seen = [before]

        def far_enough():
            if proc.poll() is not None:
                return True
            seen[0] = committed(self.b)
            return seen[0] > at_least

        wait_until(far_enough, 120, "B's stored offsets to pass %d" % at_least)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=30)
        assert rc == -signal.SIGKILL, "replay ended (exit %d) before the kill at offset %d: make the " \
            "input larger or batches smaller" % (rc, seen[0])
        after = committed(self.b)
        self.kills.append(after)
        print("killed after stored offset %d (seen %d before the kill), of %d" % (after, seen[0], self.total),
              flush=True)
        assert before < after < self.total, (before, after, self.total)
        with open(os.path.join(self.work, log)) as f:
            text = f.read()
        if before:
            assert "resuming from the offset stored with the state" in text, text[-2000:]
        return after

    def test_crash_and_resume(self):
        t0 = time.time()
        k1 = self.kill_when(10000, "b1.log")
        k2 = self.kill_when(max(k1 + 10000, self.total // 2), "b2.log")
        s = tern_json(self.replay_args(self.b, self.eb))
        print("resumed: %s (%.1fs in all)" % (json.dumps(s), time.time() - t0), flush=True)
        assert s["resumed_from_offset"] == k2 > 0, (s, k2)
        assert s["committed_offset"] == self.total, s
        assert s["records_in"] == self.total - k2, s

    def test_state_equal(self):
        assert committed(self.a) == committed(self.b) == self.total
        items_a = run(["inspect", "--state-dir", self.a, "items"]).stdout
        items_b = run(["inspect", "--state-dir", self.b, "items"]).stdout
        docs_a = [json.loads(ln) for ln in items_a.splitlines()]
        docs_b = [json.loads(ln) for ln in items_b.splitlines()]
        assert len(docs_a) > ITEMS // 2, "only %d items in the reference state" % len(docs_a)
        if items_a != items_b:
            by_a = {d["item_id"]: d for d in docs_a}
            by_b = {d["item_id"]: d for d in docs_b}
            diff = sorted(i for i in set(by_a) | set(by_b) if by_a.get(i) != by_b.get(i))
            first = diff[0]
            raise AssertionError("inspect items: %d of %d items differ after crash+resume; first %s:\n"
                                 "A: %s\nB: %s" % (len(diff), len(by_a), first,
                                                   json.dumps(by_a.get(first))[:1500],
                                                   json.dumps(by_b.get(first))[:1500]))
        print("items equal: %d items, %d neighbour entries" % (
            len(docs_a), sum(len(d["neighbors"]) for d in docs_a)), flush=True)

        rng = random.Random(SEED + 1)
        users = sorted(rng.sample(["u%04d" % k for k in range(USERS)], SAMPLE_USERS))
        jobs = [(state, what, u) for u in users for state in (self.a, self.b) for what in ("user", "recs")
                if what == "user" or u in users[:10]]

        def look(job):
            state, what, user = job
            proc = subprocess.run([TERN, "inspect", "--state-dir", state, what, user],
                                  capture_output=True, text=True, timeout=120)
            return job, proc.returncode, proc.stdout, proc.stderr

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = {job: (rc, out, err) for job, rc, out, err in pool.map(look, jobs)}
        diffs = []
        for (state, what, user), (rc, out, err) in results.items():
            if state != self.a:
                continue
            rc_b, out_b, err_b = results[(self.b, what, user)]
            assert rc == 0 and rc_b == 0, "inspect %s %s: exit %d / %d: %s %s" % (what, user, rc, rc_b, err, err_b)
            if json.loads(out) != json.loads(out_b):
                diffs.append("%s %s\nA: %s\nB: %s" % (what, user, out[:800], out_b[:800]))
        assert not diffs, "%d sampled users differ:\n%s" % (len(diffs), "\n".join(diffs[:3]))
        print("users equal: %d profiles, %d recommendation lists" % (
            len(users), len([j for j in jobs if j[1] == "recs"]) // 2), flush=True)

    def test_outputs_at_least_once(self):
        report = []
        for topic in ("recommendations", "tern-dead-letter"):
            ea, lines_a, bad_a = read_emit(os.path.join(self.ea, topic + ".jsonl"))
            eb, lines_b, bad_b = read_emit(os.path.join(self.eb, topic + ".jsonl"))
            assert bad_a == 0, "%s: %d unparsable lines in the reference --emit file" % (topic, bad_a)
            assert bad_b == 0, "%s: %d unparsable (torn) lines in the --emit file after SIGKILL" % (topic, bad_b)
            assert lines_a == len(ea), "%s: the uninterrupted replay has duplicate keys" % topic
            missing = [k for k in ea if k not in eb]
            extra = [k for k in eb if k not in ea]
            assert not missing, "%s: %d records of A missing from B, e.g. %s" % (topic, len(missing), missing[:5])
            assert not extra, "%s: %d records in B that A does not have, e.g. %s" % (topic, len(extra), extra[:5])
            differ = [k for k in ea if any(rec != ea[k][0] for rec in eb[k])]
            assert not differ, "%s: %d re-published records differ from the reference, e.g. %s\nA: %s\nB: %s" % (
                topic, len(differ), differ[0], ea[differ[0]][0][:600], [r[:600] for r in eb[differ[0]]])
            dups = lines_b - len(eb)
            report.append("%s: %d records, %d duplicates after %d kills" % (topic, len(ea), dups, len(self.kills)))
        assert len(report) == 2
        print("outputs at least once: " + "; ".join(report), flush=True)


if __name__ == "__main__":
    Resume().main()
