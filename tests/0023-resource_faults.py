"""0023-resource_faults: an unusable state directory and a full disk.

tern must refuse to start on a state directory it cannot use, and when
the disk fills mid-stream it must stop consuming, commit nothing partial
and exit non-zero with a message naming the cause; once space returns a
restart resumes and ends in exactly the state of an uninterrupted run.

- Unusable state.dir: its parent is a regular file (ENOTDIR even for
  root, which ignores chmod), state.dir itself is a regular file, and the
  RocksDB LOCK is held by another process.
- Disk full through RLIMIT_FSIZE (works unprivileged and as root): the
  replay runs with the limit set and SIGXFSZ ignored, so a write past
  the limit fails with EFBIG ("File too large"). The state left behind
  must have the digest of a clean replay of exactly the committed prefix
  of the input (a partial batch would change it), and a restart without
  the limit must end with the reference digest.
- A real ENOSPC on a small tmpfs when this process may mount one (root
  with CAP_SYS_ADMIN); skipped otherwise.

The input is generated here (fixed seed, no ../shared/data): 30k jsonl
events, one input partition (`tern replay` uses one), so digests compare
exactly. About 60 s on 2 cores.
"""
import fcntl
import json
import os
import random
import resource
import shutil
import signal
import subprocess

from ternlib import TERN, Tests, run, workdir

SEED = 20240723
EVENTS = 30000
COMMON = ["--format", "jsonl", "-X", "batch.max_events=500"]
# 300 KiB: the store opens and commits a few batches, far less than the
# write-ahead log of the whole input (~2.5 MB). 40 KiB: the first commit
# fails (before the store kept RocksDB's info LOG quiet, its second failed
# append tripped an assertion in Debian's librocksdb: SIGABRT).
FSIZE_LIMITS = (300 * 1024, 40 * 1024)


def generate(path):
    rng = random.Random(SEED)
    ts = 1700000000000
    with open(path, "w") as f:
        for k in range(EVENTS):
            ts += rng.randint(0, 400)
            item = "i%d" % int(rng.paretovariate(1.1) * 10)
            etype = rng.choice(["VIEW"] * 8 + ["CART", "PURCHASE"])
            ev = {"event_id": "e%d" % k, "user_id": "u%d" % rng.randint(0, 999),
                  "item_id": item, "category_id": None, "event_type": etype, "ts_ms": ts,
                  "price": None, "quantity": None, "impression_id": None,
                  "campaign_id": None, "context": {}}
            if k % 4999 == 17:             # a few dead letters
                ev["user_id"] = ""
            f.write(json.dumps(ev) + "\n")


def limited(limit):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def replay(inp, state, check=True, **kw):
    return run(["replay", "--input", inp, "--state-dir", state] + COMMON, check=check,
               timeout=300, **kw)


def digest(state):
    return json.loads(run(["inspect", "--state-dir", state, "digest"]).stdout)


def committed(state):
    offsets = json.loads(run(["inspect", "--state-dir", state, "offsets"]).stdout)["offsets"]
    return sum(o["next_offset"] for o in offsets)


def assert_failed(proc, *causes):
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, None), "exit %s\n%s" % (proc.returncode, out[-2000:])
    # A crash (SIGABRT from an assertion, SIGSEGV) is not a clean stop.
    assert proc.returncode > 0, "killed by signal %d\n%s" % (-proc.returncode, out[-2000:])
    assert any(c in out for c in causes), "no cause among %s in:\n%s" % (causes, out[-2000:])
    assert '"committed_offset"' not in proc.stdout, "a failed replay printed a summary"


class ResourceFaults(Tests):
    def __init__(self):
        self.work = workdir("resources")
        self.input = os.path.join(self.work, "events.jsonl")
        generate(self.input)
        self.ref = None

    def reference(self):
        if self.ref is None:
            state = os.path.join(self.work, "ref")
            replay(self.input, state)
            self.ref = digest(state)
            assert self.ref["by_cf"]["offsets"] == 1, self.ref
        return self.ref

    def test_state_dir_parent_is_a_file(self):
        blocker = os.path.join(self.work, "not-a-dir")
        open(blocker, "w").close()
        proc = replay(self.input, os.path.join(blocker, "state"), check=False)
        assert_failed(proc, "Not a directory")
        assert "not-a-dir" in proc.stderr, proc.stderr
        proc = replay(self.input, blocker, check=False)
        assert_failed(proc, "not a directory")

    def test_state_dir_locked(self):
        state = os.path.join(self.work, "locked")
        replay(self.input, state)
        with open(os.path.join(state, "LOCK"), "r+") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            proc = replay(self.input, state, check=False)
        assert_failed(proc, "lock")
        assert digest(state) == self.reference()

    def test_disk_full_rlimit(self):
        ref = self.reference()
        for limit in FSIZE_LIMITS:
            state = os.path.join(self.work, "fsize-%d" % limit)
            proc = replay(self.input, state, check=False, preexec_fn=limited(limit))
            assert_failed(proc, "File too large")
            assert "state" in proc.stderr, proc.stderr
            self.check_prefix_and_resume(state, ref)

    def test_disk_full_tmpfs(self):
        ref = self.reference()
        mnt = os.path.join(self.work, "tmpfs")
        os.makedirs(mnt)
        if not shutil.which("mount"):
            print("skipped: no mount command")
            return
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                               capture_output=True, text=True)
        if mount.returncode != 0:
            print("skipped: cannot mount a tmpfs here (%s)" % mount.stderr.strip())
            return
        try:
            state = os.path.join(mnt, "state")
            proc = replay(self.input, state, check=False)
            assert_failed(proc, "No space left on device")
            subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
            self.check_prefix_and_resume(state, ref)
        finally:
            subprocess.run(["umount", mnt])

    def check_prefix_and_resume(self, state, ref):
        """Nothing partial: the state equals a clean replay of the
        committed prefix. Then a restart ends at the reference."""
        n = committed(state)
        assert 0 <= n < EVENTS, "committed %d of %d before the disk filled" % (n, EVENTS)
        if n == 0:   # nothing committed: nothing at all may be stored
            assert digest(state)["records"] == 0, digest(state)
        else:
            self.check_prefix(state, n)
        summary = json.loads(replay(self.input, state).stdout)
        assert summary["resumed_from_offset"] == n, summary
        assert summary["committed_offset"] == EVENTS, summary
        assert digest(state) == ref, (digest(state), ref)
        print("  disk full after %d of %d events; resumed, digest %s"
              % (n, EVENTS, ref["digest"]), flush=True)

    def check_prefix(self, state, n):
        prefix_in = os.path.join(self.work, "prefix-%d.jsonl" % n)
        with open(self.input) as f, open(prefix_in, "w") as out:
            for k, line in enumerate(f):
                if k == n:
                    break
                out.write(line)
        prefix_state = os.path.join(self.work, "prefix-%d" % n)
        replay(prefix_in, prefix_state)
        assert digest(state) == digest(prefix_state), (n, digest(state), digest(prefix_state))
        shutil.rmtree(prefix_state, ignore_errors=True)


if __name__ == "__main__":
    ResourceFaults().main()
