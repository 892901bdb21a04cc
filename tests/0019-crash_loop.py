"""0019-crash_loop: `tern run` SIGKILLed again and again ends in exactly the
state of an uninterrupted run.

`tern broker` runs in its own process with ONE input partition (the global
CTR and churn models depend on the order events of different partitions
interleave; with one partition the order is the log's, so digests compare
exactly). A seeded stream of EVENTS jsonl events is produced into it
(zstd-compressed: the embedded broker keeps ~5 MiB per partition): users on
Zipf-skewed items, views, carts, purchases, favourites, impressions and the
clicks on some of them, spread over weeks of event time so the CTR join and
the churn labels both resolve, and a few invalid events (dead letters).

Reference: one `tern run` (group "ref") into a fresh state dir, stopped with
SIGTERM once its stored offset reaches the end. Crash loop: `tern run`
(group "crash") into another state dir, killed with SIGKILL at seeded
moments and restarted until its stored offset reaches the end: half of the
kills come the moment `tern inspect offsets` shows a new commit (between
the RocksDB write and the next poll), half after a random short delay
(during a batch). Then:
- the digest (every record of every column family) equals the reference's;
- every recommendation key (user_id, source offset) the reference emitted
  was emitted at least once by the crash run (--emit files), with the same
  content; duplicates are counted, in total and per kill.
Prints: kills survived, events, duplicates per crash, wall time.
"""
import collections
import json
import os
import random
import signal
import subprocess
import time

from ternlib import TERN, Tests, committed, inspect, run, shop_stream, start, start_broker, stop, workdir

SEED = 20240719
EVENTS = 200000
USERS = 4000
ITEMS = 4000
KILLS = 24
MIN_KILLS = 15
# Small batches: many commits per second, so a kill lands between two of
# them. Short churn horizons so labels resolve within the stream's ~25
# days of event time.
PIPE = ["-X", "batch.max_events=500", "-X", "batch.max_ms=50", "-X", "kafka.session_timeout_ms=6000",
        "-X", "churn.inactive_days=3", "-X", "churn.score_interval_days=1",
        "-X", "ctr.attribution_window_seconds=120",
        # A small WAL (4 x write_buffer_mb): each poll's `tern inspect`
        # replays it, and a long replay under load let runs race past
        # several kill points before the poll saw them.
        "-X", "state.write_buffer_mb=4"]
STALL_TIMEOUT = 60
# Measured: ~150 s on 2 shared cores under load (15-24 restarts, each a
# ~3 s group join; the reference runs meanwhile).


def generate(path):
    return shop_stream(path, EVENTS, SEED, USERS, ITEMS)



def wait_offset(state, proc, above, what):
    """Poll until the stored offset exceeds above; return it."""
    progress_at = time.time()
    while True:
        now = committed(state, None)
        if now is not None and now > above:
            return now
        if proc.poll() is not None:
            raise AssertionError("%s: tern run exited %s at stored offset %s" % (what, proc.returncode, now))
        if time.time() - progress_at > STALL_TIMEOUT:
            raise AssertionError("%s: no commit past %d for %ds" % (what, above, STALL_TIMEOUT))
        time.sleep(0.02)


def read_emit(path):
    """key (user_id, source_offset) -> [record text, ...]; and torn lines.

    A line cut short by SIGKILL has the next run's first record appended to
    it: that record is still read."""
    by_key = collections.defaultdict(list)
    torn = 0
    if not os.path.exists(path):
        return by_key, 0
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                torn += 1
                rec, start_at = None, line.find('{"', 1)
                while start_at > 0 and rec is None:
                    try:
                        rec = json.loads(line[start_at:])
                    except ValueError:
                        pass
                    if not isinstance(rec, dict) or "source_offset" not in rec:
                        # a fragment (the torn record's nested item ends the line)
                        rec = None
                        start_at = line.find('{"', start_at + 1)
                if rec is None:
                    continue
            by_key[(rec.get("user_id"), rec["source_offset"])].append(json.dumps(rec, sort_keys=True))
    return by_key, torn


class CrashLoop(Tests):
    def __init__(self):
        self.t_start = time.time()
        self.work = workdir("crash")
        self.input = os.path.join(self.work, "events.jsonl")
        self.total, self.invalid = generate(self.input)
        self.broker, self.brokers = start_broker(self.work, ["-X", "topics.input_partitions=1"])
        self.ref = os.path.join(self.work, "R")
        self.crash = os.path.join(self.work, "C")
        self.kills = []  # (mode, stored offset at the kill)

    def args(self, state, group, emit):
        return ["run", "-X", "kafka.brokers=" + self.brokers, "-X", "kafka.group_id=" + group,
                "--state-dir", state, "--emit", emit] + PIPE

    def test_produce(self):
        out = run(["produce", "--input", self.input, "--format", "jsonl", "-X", "kafka.brokers=" + self.brokers,
                   "-X", "topics.input_partitions=1", "-X", "kafka.producer.compression.codec=zstd",
                   "-X", "kafka.producer.compression.level=12"])
        doc = json.loads(out.stdout)
        print("produced: %s" % out.stdout.strip(), flush=True)
        assert doc["produced"] == self.total and doc["failed"] == 0, doc
        # the embedded broker silently drops a partition's oldest data past
        # ~5 MiB: the whole stream must still be there
        first = subprocess.run(["kcat", "-C", "-b", self.brokers, "-t", "behavior-events", "-o", "beginning",
                                "-c", "1", "-e", "-f", "%o"], capture_output=True, text=True, timeout=60)
        assert first.stdout.strip() == "0", "the broker dropped the stream's head: first offset %r (%s)" % (
            first.stdout, first.stderr[-500:])

    def test_reference_start(self):
        # The reference runs beside the crash loop (which mostly waits for
        # group joins): the two do not share anything but the broker.
        self.ref_t0 = time.time()
        self.ref_proc = start(self.args(self.ref, "ref", self.ref + ".emit"), os.path.join(self.work, "ref.log"))

    def wait_end(self, proc, state, what):
        """Poll until the stored offset reaches the end of the stream."""
        wait_offset(state, proc, self.total - 1, what)

    def emit_dir(self, n):
        """Each incarnation emits into its own directory: what a restart
        emitted again is then exactly attributable to the kill before it."""
        return os.path.join(self.work, "C.emit", "%02d" % n)

    def test_crash_loop(self):
        """Kill at KILLS seeded stored offsets, alternately the moment the
        commit is seen and after a random delay (mid-batch); each run joins
        a group of its own (the offsets live in RocksDB, Kafka's are only a
        monitoring copy), so a restart does not wait for the killed
        member's session to expire."""
        rng = random.Random(SEED + 1)
        t0 = time.time()
        n, stored = 0, 0
        while stored < self.total:
            n += 1
            os.makedirs(self.emit_dir(n))
            proc = start(self.args(self.crash, "crash%02d" % n, self.emit_dir(n)),
                         os.path.join(self.work, "crash%02d.log" % n))
            if len(self.kills) == KILLS:
                wait_offset(self.crash, proc, self.total - 1, "last run")
                assert stop(proc) == 0, "the last run did not exit 0 on SIGTERM"
                stored = committed(self.crash, None)
                break
            # The next kill point is drawn from where this run resumed, so a
            # run that races past it (tern runs far faster than a poll of
            # `tern inspect`) costs no kill: the remaining kills spread over
            # the rest of the stream.
            gap = (self.total - 8000 - stored) / (KILLS - len(self.kills) + 1)
            target = stored + max(500, int(rng.uniform(0.3, 1.0) * gap))
            seen = wait_offset(self.crash, proc, target, "run %d" % n)
            mode = "commit" if n % 2 else "batch"
            if mode == "batch":
                time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL, "run %d exited before the kill" % n
            before, stored = stored, committed(self.crash, None)
            self.kills.append((mode, before, stored))
            print("kill %2d (%s, %.1fs): stored offset %d -> %d (seen %d)" % (
                n, mode, time.time() - t0, before, stored, seen), flush=True)
        print("crash loop: %d kills in %.1fs" % (len(self.kills), time.time() - t0), flush=True)
        # Since commits stopped waiting on the embedded broker (issue 7) a
        # run processes 5-20k events between two polls of `tern inspect` on
        # a busy machine, so fewer than KILLS kill points fit in the stream.
        assert len(self.kills) >= MIN_KILLS, "only %d kills before the stream drained" % len(self.kills)

    def test_reference_end(self):
        self.wait_end(self.ref_proc, self.ref, "reference")
        assert stop(self.ref_proc) == 0, "reference run did not exit 0 on SIGTERM"
        print("reference: %d events in %.1fs" % (self.total, time.time() - self.ref_t0), flush=True)

    def test_same_state(self):
        want, got = inspect(self.ref, "digest"), inspect(self.crash, "digest")
        print("digest: reference %s\n        crash loop %s" % (json.dumps(want), json.dumps(got)), flush=True)
        assert want == got, (want, got)

    def test_recommendations_at_least_once(self):
        ref, torn_r = read_emit(os.path.join(self.ref + ".emit", "recommendations.jsonl"))
        assert torn_r == 0 and ref, "reference emit: %d torn lines, %d records" % (torn_r, len(ref))
        runs, torn = [], 0
        for n in range(1, len(self.kills) + 2):
            keys, bad = read_emit(os.path.join(self.emit_dir(n), "recommendations.jsonl"))
            runs.append(keys)
            torn += bad
        got = collections.defaultdict(list)
        for keys in runs:
            for k, recs in keys.items():
                got[k].extend(recs)
        missing = [k for k in ref if k not in got]
        extra = [k for k in got if k not in ref]
        differ = [k for k in ref if k in got and any(r != ref[k][0] for r in got[k])]
        dups = sum(len(v) - 1 for v in got.values())
        # duplicates of a kill: what the killed run emitted and a later one
        # emitted again (its batch in progress: past the stored offset)
        per_kill = [sum(1 for k in runs[i] if any(k in later for later in runs[i + 1:]))
                    for i in range(len(self.kills))]
        self.summary = (len(ref), dups, torn, per_kill)
        print("recommendations: %d keys, %d duplicates in total, %d torn lines; per crash: %s" % (
            len(ref), dups, torn, per_kill), flush=True)
        assert not missing, "%d recommendation keys missing, e.g. %s" % (len(missing), missing[:5])
        assert not extra, "%d keys the reference does not have, e.g. %s" % (len(extra), extra[:5])
        assert not differ, "%d keys differ from the reference, e.g. %s" % (len(differ), differ[:3])
        print("summary: kills survived %d (%d right after a commit, %d mid-batch), events %d, "
              "recommendation duplicates %d (per crash: min %d, max %d, mean %.0f), wall %.1fs" % (
                  len(self.kills), sum(1 for k in self.kills if k[0] == "commit"),
                  sum(1 for k in self.kills if k[0] == "batch"), self.total, dups, min(per_kill),
                  max(per_kill), sum(per_kill) / len(per_kill), time.time() - self.t_start), flush=True)

if __name__ == "__main__":
    CrashLoop().main()
