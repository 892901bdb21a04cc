"""0013-replay_resume: a replay SIGKILLed midway and resumed ends in
exactly the state of an uninterrupted replay of the same file.

The input is generated here (fixed seed, no ../shared/data): 60k jsonl
events of 2000 users on 3000 Zipf-skewed items, VIEW/CART/PURCHASE/
FAVORITE plus IMPRESSIONs, some events without an item, a few invalid
ones (dead letters), event time increasing.

Reference A: one uninterrupted `tern replay`. B: the same replay killed
with SIGKILL once its stored offsets pass 10000, then run to completion.
C: a copy of B at its kill, killed again past the middle of the file,
then run to completion. B and C must equal A in state (every item with
all its neighbours, a sample of users and their recommendations, the
offsets): nothing lost, nothing counted twice. Outputs are at least
once: every (user_id, source_offset) record of A is in B and C, they
have nothing else, and a record re-published after a crash equals A's.
"""
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ternlib import TERN, Tests, committed, run, start, workdir

SEED = 20240601
EVENTS = 60000
USERS = 2000
ITEMS = 3000
T0 = 1700000000000
# Small batches so a kill lands between many commits; 2 MiB memtables so
# each read-only `inspect` replays a short WAL (tern does not flush on exit).
# fsync per commit slows commits down enough for a poll to see them.
COMMON = ["--format", "jsonl", "-X", "batch.max_events=200", "-X", "state.sync_writes=true",
          "-X", "state.write_buffer_mb=4"]
SAMPLE_USERS = 50
# An uninterrupted replay takes ~15 s on 2 cores with every model on; a
# resume that takes this long hangs.
RESUME_TIMEOUT = 90
STALL_TIMEOUT = 15


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



def tail(path, size=2000):
    with open(path, errors="replace") as f:
        return f.read()[-size:]


def read_emit(path):
    """(key -> [record, ...], number of records, number of torn lines).

    A torn line (a record cut short by the kill, the next run's first
    record appended to it) is counted, and the complete record at its end
    is still read."""
    by_key = collections.defaultdict(list)
    records = torn = 0
    if not os.path.exists(path):
        return by_key, 0, 0
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                torn += 1
                rec = None
                start = line.find('{"', 1)
                while start > 0 and rec is None:
                    try:
                        rec = json.loads(line[start:])
                    except ValueError:
                        start = line.find('{"', start + 1)
                if rec is None:
                    continue
            records += 1
            by_key[(rec.get("user_id"), rec["source_partition"], rec["source_offset"])].append(
                json.dumps(rec, sort_keys=True))
    return by_key, records, torn


class Resume(Tests):
    def __init__(self):
        self.work = workdir("resume")
        self.input = os.path.join(self.work, "events.jsonl")
        self.total, self.invalid = generate(self.input)
        self.a, self.ea = os.path.join(self.work, "A"), os.path.join(self.work, "EA")
        self.b, self.eb = os.path.join(self.work, "B"), os.path.join(self.work, "EB")
        self.c, self.ec = os.path.join(self.work, "C"), os.path.join(self.work, "EC")

    def replay_args(self, state, emit):
        return ["replay", "--input", self.input, "--state-dir", state, "--emit", emit] + COMMON

    def test_reference(self):
        s = tern_json(self.replay_args(self.a, self.ea))
        print("reference: %s" % json.dumps(s), flush=True)
        assert s["records_in"] == self.total and s["committed_offset"] == self.total, s
        assert s["resumed_from_offset"] == 0, s
        assert s["dead_lettered"] == self.invalid, s
        assert s["outputs"]["recommendations"] > 0, s

    def kill_when(self, state, emit, at_least, log):
        """Start the replay into state, SIGKILL it once its stored offsets pass at_least."""
        before = committed(state)
        proc = start(self.replay_args(state, emit), os.path.join(self.work, log))
        seen, progress_at = before, time.time()
        # Poll without sleeping: the pipeline commits ~3000 events per poll.
        while proc.poll() is None and seen <= at_least:
            now = committed(state)
            if now > seen:
                seen, progress_at = now, time.time()
            if time.time() - progress_at > STALL_TIMEOUT:
                proc.kill()
                proc.wait()
                raise AssertionError(
                    "replay into %s (started from stored offset %d) made no progress for %ds: "
                    "stuck at stored offset %d of %d; log:\n%s" % (
                        state, before, STALL_TIMEOUT, seen, self.total, tail(os.path.join(self.work, log))))
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=30)
        assert rc == -signal.SIGKILL, "replay ended (exit %d) before the kill at offset %d: make the " \
            "input larger or batches smaller" % (rc, seen)
        after = committed(state)
        print("killed after stored offset %d (seen %d before the kill), of %d" % (after, seen, self.total),
              flush=True)
        assert before < after < self.total, (before, after, self.total)
        if before:
            assert "resuming from the offset stored with the state" in tail(os.path.join(self.work, log), 100000)
        return after

    def resume(self, state, emit, killed_at, what):
        t0 = time.time()
        try:
            out = run(self.replay_args(state, emit), timeout=RESUME_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "%s: the replay resumed from stored offset %d did not finish within %ds (an "
                "uninterrupted replay takes ~15s); stored offset now %d of %d. Run by hand with "
                "-X log.level=debug to see why."
                % (what, killed_at, RESUME_TIMEOUT, committed(state), self.total)) from None
        s = json.loads(out.stdout)
        print("%s: resumed (%.1fs): %s" % (what, time.time() - t0, out.stdout.strip()), flush=True)
        problems = []
        if s["resumed_from_offset"] != killed_at:
            problems.append("resumed_from_offset %d, the stored offset was %d" % (s["resumed_from_offset"], killed_at))
        if s["committed_offset"] != self.total:
            problems.append("committed_offset %d, expected %d" % (s["committed_offset"], self.total))
        if s["records_in"] != self.total - killed_at:
            problems.append("records_in %d after resuming from %d: expected %d (the rest of the file)"
                            % (s["records_in"], killed_at, self.total - killed_at))
        return problems

    def verify(self, state, emit, name, kills, problems, sample=SAMPLE_USERS):
        """Compare with A; fail with every problem found (summary, state, outputs)."""
        t0 = time.time()
        for check in (lambda: self.check_state(state, name, sample), lambda: self.check_outputs(emit, name, kills)):
            try:
                check()
            except AssertionError as e:
                problems.append(str(e))
        print("%s: compared with A in %.1fs" % (name, time.time() - t0), flush=True)
        assert not problems, "%s:\n  " % name + "\n  ".join(problems)

    def test_crash_and_resume(self):
        # B: killed once past offset 10000, then resumed to completion. C starts
        # as a copy of B right after that kill.
        k1 = self.kill_when(self.b, self.eb, 10000, "b1.log")
        shutil.copytree(self.b, self.c)
        shutil.copytree(self.eb, self.ec)
        problems = self.resume(self.b, self.eb, k1, "B (one kill)")
        self.verify(self.b, self.eb, "B", 1, problems)

    def test_two_crashes(self):
        # C: killed a second time past the middle of the file (and past the
        # replay's 20000-record feed window), then resumed to completion.
        assert os.path.isdir(self.c), "no copy of B after its first kill"
        k1 = committed(self.c)
        k2 = self.kill_when(self.c, self.ec, max(k1 + 10000, self.total // 2), "c2.log")
        problems = self.resume(self.c, self.ec, k2, "C (two kills)")
        self.verify(self.c, self.ec, "C", 2, problems, sample=SAMPLE_USERS // 2)

    def check_state(self, other, name, sample=SAMPLE_USERS):
        assert committed(self.a) == committed(other) == self.total, "stored offsets: A %d, %s %d" % (
            committed(self.a), name, committed(other))
        items_a = run(["inspect", "--state-dir", self.a, "items"]).stdout
        items_b = run(["inspect", "--state-dir", other, "items"]).stdout
        docs_a = [json.loads(ln) for ln in items_a.splitlines()]
        docs_b = [json.loads(ln) for ln in items_b.splitlines()]
        assert len(docs_a) > ITEMS // 2, "only %d items in the reference state" % len(docs_a)
        if items_a != items_b:
            by_a = {d["item_id"]: d for d in docs_a}
            by_b = {d["item_id"]: d for d in docs_b}
            diff = sorted(i for i in set(by_a) | set(by_b) if by_a.get(i) != by_b.get(i))
            first = diff[0]
            raise AssertionError("inspect items: %d of %d items differ between A and %s; first %s:\n"
                                 "A: %s\n%s: %s" % (len(diff), len(by_a), name, first,
                                                    json.dumps(by_a.get(first))[:1500], name,
                                                    json.dumps(by_b.get(first))[:1500]))

        rng = random.Random(SEED + 1)
        users = sorted(rng.sample(["u%04d" % k for k in range(USERS)], sample))
        jobs = [(state, what, u) for u in users for state in (self.a, other) for what in ("user", "recs")
                if what == "user" or u in users[:10]]

        def look(job):
            state, what, user = job
            proc = subprocess.run([TERN, "inspect", "--state-dir", state, what, user],
                                  capture_output=True, text=True, timeout=120)
            return job, proc.returncode, proc.stdout, proc.stderr

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = {job: (rc, out, err) for job, rc, out, err in pool.map(look, jobs)}
        diffs = []
        for (state, what, user), (rc, out, err) in results.items():
            if state != self.a:
                continue
            rc_b, out_b, err_b = results[(other, what, user)]
            assert rc == 0 and rc_b == 0, "inspect %s %s: exit %d / %d: %s %s" % (what, user, rc, rc_b, err, err_b)
            if json.loads(out) != json.loads(out_b):
                diffs.append("%s %s\nA: %s\n%s: %s" % (what, user, out[:800], name, out_b[:800]))
        assert not diffs, "%d sampled users differ between A and %s:\n%s" % (len(diffs), name, "\n".join(diffs[:3]))
        print("%s: state equal to A: %d items (%d neighbour entries), %d user profiles, %d recommendation lists"
              % (name, len(docs_a), sum(len(d["neighbors"]) for d in docs_a), len(users),
                 len([j for j in jobs if j[1] == "recs"]) // 2), flush=True)

    def check_outputs(self, emit, name, kills):
        report, failures = [], []
        for topic in ("recommendations", "tern-dead-letter"):
            ea, lines_a, bad_a = read_emit(os.path.join(self.ea, topic + ".jsonl"))
            eb, lines_b, bad_b = read_emit(os.path.join(emit, topic + ".jsonl"))
            assert bad_a == 0, "%s: %d unparsable lines in the reference --emit file" % (topic, bad_a)
            assert lines_a == len(ea), "%s: the uninterrupted replay has duplicate keys" % topic
            if bad_b:
                failures.append("%s: %s: %d torn (unparsable) lines in the --emit file after SIGKILL + resume"
                                % (name, topic, bad_b))
            missing = [k for k in ea if k not in eb]
            extra = [k for k in eb if k not in ea]
            if missing:
                failures.append("%s: %s: %d records of A missing, e.g. %s" % (name, topic, len(missing), missing[:5]))
            if extra:
                failures.append("%s: %s: %d records that A does not have, e.g. %s" % (name, topic, len(extra), extra[:5]))
            differ = [k for k in ea if any(rec != ea[k][0] for rec in eb.get(k, ()))]
            report.append("%s %d records, %d duplicates, %d differ from A, %d torn lines" % (
                topic, len(ea), lines_b - len(eb), len(differ), bad_b))
            if differ:
                k = differ[0]
                failures.append("%s: %s: %d records differ from A's for the same key (%s), e.g. %s\nA: %s\n%s: %s"
                                % (name, topic, len(differ), ", ".join(str(d[2]) for d in differ[:10]), k,
                                   ea[k][0][:600], name, [r[:600] for r in eb[k]]))
        print("%s: outputs at least once after %d kill(s): %s" % (name, kills, "; ".join(report)), flush=True)
        # One input partition: a record published again, or first, after the
        # resume must be the one the uninterrupted replay published.
        assert not failures, "\n".join(failures)


if __name__ == "__main__":
    Resume().main()
