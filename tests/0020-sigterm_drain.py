"""0020-sigterm_drain: SIGTERM under full load stops `tern run` within
batch.shutdown_timeout_ms, having committed what it processed.

`tern broker` with ONE input partition (digests compare exactly only when
the models see one order of events); a seeded stream (ternlib.shop_stream)
is produced at once, so `tern run` has a large backlog and full batches
(batch.max_events at its default). The reference is an uninterrupted run
into a fresh state dir.
- Clean stop: SIGTERM mid-backlog; exit 0 within the bound (+ a margin for
  a loaded machine); every event it emitted an output for is below the
  stored offset (processed = committed); a restart drains the rest; the
  digest equals the reference's and the recommendations of the two runs
  are the reference's exactly once (nothing lost, nothing twice).
- Bound enforced: the broker is frozen (SIGSTOP) so the batch's outputs
  cannot be delivered; SIGTERM; tern exits non-zero within the bound,
  naming it, with nothing of the batch committed; after SIGCONT a restart
  drains and the digest still equals the reference's.
Takes ~60 s on 2 shared cores.
"""
import collections
import json
import os
import signal
import subprocess
import time

from ternlib import TERN, Tests, committed, inspect, run, shop_stream, start, start_broker, stop, workdir

SEED = 20240720
EVENTS = 100000
SHUTDOWN_MS = 4000
MARGIN_S = 6.0  # a loaded, shared machine: generous, never a speed claim
PIPE = ["-X", "kafka.session_timeout_ms=6000", "-X", "batch.shutdown_timeout_ms=%d" % SHUTDOWN_MS,
        "-X", "churn.inactive_days=3", "-X", "churn.score_interval_days=1",
        "-X", "ctr.attribution_window_seconds=120"]
OUTPUTS = ("recommendations", "ctr-scores", "tern-dead-letter")



def wait_offset(state, proc, above, what, timeout=120):
    t0 = time.time()
    while True:
        now = committed(state, None)
        if now is not None and now > above:
            return now
        assert proc.poll() is None, "%s: tern run exited %s at stored offset %s" % (what, proc.returncode, now)
        assert time.time() - t0 < timeout, "%s: stored offset not past %d after %ds" % (what, above, timeout)
        time.sleep(0.05)


def emitted(emit_dir, topic):
    """[(user_id, source_offset)] of an --emit file (a clean run: no torn lines)."""
    path = os.path.join(emit_dir, topic + ".jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(r.get("user_id"), r["source_offset"]) for r in map(json.loads, f)]


class SigtermDrain(Tests):
    def __init__(self):
        self.work = workdir("sigterm")
        self.input = os.path.join(self.work, "events.jsonl")
        self.total, self.invalid = shop_stream(self.input, EVENTS, SEED, 3000, 3000)
        self.broker, self.brokers = start_broker(self.work, ["-X", "topics.input_partitions=1"])
        self.ref = os.path.join(self.work, "R")

    def args(self, state, group, emit):
        os.makedirs(emit, exist_ok=True)
        return ["run", "-X", "kafka.brokers=" + self.brokers, "-X", "kafka.group_id=" + group,
                "--state-dir", state, "--emit", emit] + PIPE

    def test_produce(self):
        out = run(["produce", "--input", self.input, "--format", "jsonl", "-X", "kafka.brokers=" + self.brokers,
                   "-X", "kafka.producer.compression.codec=zstd", "-X", "kafka.producer.compression.level=12"])
        assert json.loads(out.stdout)["produced"] == self.total, out.stdout
        first = subprocess.run(["kcat", "-C", "-b", self.brokers, "-t", "behavior-events", "-o", "beginning",
                                "-c", "1", "-e", "-f", "%o"], capture_output=True, text=True, timeout=60)
        assert first.stdout.strip() == "0", "the broker dropped the stream's head: %r" % first.stdout

    def test_reference(self):
        proc = start(self.args(self.ref, "ref", self.ref + ".emit"), os.path.join(self.work, "ref.log"))
        wait_offset(self.ref, proc, self.total - 1, "reference")
        assert stop(proc) == 0, "reference run did not exit 0 on SIGTERM"
        self.ref_recs = emitted(self.ref + ".emit", "recommendations")
        assert len(self.ref_recs) == len(set(self.ref_recs)) > 0

    def sigterm(self, proc):
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=SHUTDOWN_MS / 1000 + 60)
        return rc, time.time() - t0

    def test_sigterm_under_load(self):
        state, e1, e2 = os.path.join(self.work, "S"), os.path.join(self.work, "S1"), os.path.join(self.work, "S2")
        proc = start(self.args(state, "s1", e1), os.path.join(self.work, "s1.log"))
        wait_offset(state, proc, 20000, "loaded run")
        rc, took = self.sigterm(proc)
        stored = committed(state, None)
        print("SIGTERM at stored offset >20000: exit %d after %.2fs (bound %d ms), stored offset %d of %d"
              % (rc, took, SHUTDOWN_MS, stored, self.total), flush=True)
        assert rc == 0, "exit %d on SIGTERM" % rc
        assert took < SHUTDOWN_MS / 1000 + MARGIN_S, "took %.1fs" % took
        assert 20000 < stored < self.total, "SIGTERM came after the backlog drained: %d" % stored
        # processed = committed: the last event it emitted an output for is
        # the last one below the stored offset
        last = max(off for t in OUTPUTS for _, off in emitted(e1, t))
        assert last == stored - 1, "last output at source offset %d, stored offset %d" % (last, stored)
        proc = start(self.args(state, "s2", e2), os.path.join(self.work, "s2.log"))
        wait_offset(state, proc, self.total - 1, "restart")
        assert stop(proc) == 0
        want, got = inspect(self.ref, "digest"), inspect(state, "digest")
        assert want == got, (want, got)
        recs = emitted(e1, "recommendations") + emitted(e2, "recommendations")
        dups = [k for k, c in collections.Counter(recs).items() if c > 1]
        assert not dups, "%d recommendations emitted twice, e.g. %s" % (len(dups), dups[:3])
        assert sorted(recs) == sorted(self.ref_recs), "recommendations differ from the reference's"
        print("drained after restart: digest equal (%d records), %d recommendations, 0 duplicates"
              % (got["records"], len(recs)), flush=True)

    def test_bound_enforced(self):
        state, e1, e2 = os.path.join(self.work, "T"), os.path.join(self.work, "T1"), os.path.join(self.work, "T2")
        proc = start(self.args(state, "t1", e1), os.path.join(self.work, "t1.log"))
        wait_offset(state, proc, 20000, "loaded run")
        self.broker.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.2)
            before = committed(state, None)
            rc, took = self.sigterm(proc)
        finally:
            self.broker.send_signal(signal.SIGCONT)
        after = committed(state, None)
        with open(os.path.join(self.work, "t1.log")) as f:
            log = f.read()
        print("SIGTERM with the broker frozen: exit %d after %.2fs (bound %d ms), stored offset %d -> %d"
              % (rc, took, SHUTDOWN_MS, before, after), flush=True)
        assert rc != 0, "exit 0 although the batch could not be delivered"
        assert SHUTDOWN_MS / 1000 - 0.5 < took < SHUTDOWN_MS / 1000 + MARGIN_S, "took %.1fs" % took
        assert "batch.shutdown_timeout_ms" in log, log[-2000:]
        assert after == before, "a batch was committed while its outputs were undelivered"
        proc = start(self.args(state, "t2", e2), os.path.join(self.work, "t2.log"))
        wait_offset(state, proc, self.total - 1, "restart", timeout=180)
        assert stop(proc) == 0
        want, got = inspect(self.ref, "digest"), inspect(state, "digest")
        assert want == got, (want, got)
        print("restart after the broker thawed: digest equal", flush=True)


if __name__ == "__main__":
    SigtermDrain().main()
