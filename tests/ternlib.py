"""Shared helpers for tern's end-to-end tests (Python stdlib only).

The tern binary, the source and build trees and the independent consumer
come from the environment ctest sets (TERN_BIN, TERN_SOURCE_DIR,
TERN_BINARY_DIR, TERN_CONSUME). Each test works in its own directory under
the build tree and stops every process it started, also on failure.
"""
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TERN = os.environ.get("TERN_BIN", "build/tern")
SRC = os.environ.get("TERN_SOURCE_DIR", os.getcwd())
BUILD = os.environ.get("TERN_BINARY_DIR", os.path.join(SRC, "build"))
CONSUME = os.environ.get("TERN_CONSUME", os.path.join(BUILD, "tests", "tern-test-consume"))
SCHEMAS = os.path.join(SRC, "conf", "schemas")

_procs = []


def data_dir():
    """../shared/data beside the repository, or None."""
    env = os.environ.get("TERN_DATA_DIR")
    for path in (env, os.path.join(SRC, "..", "shared", "data")):
        if path and os.path.isdir(path):
            return os.path.abspath(path)
    return None


def skip(reason):
    print("skipped: " + reason)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def workdir(tag):
    base = os.path.join(BUILD, "tmp")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=tag + "-", dir=base)


def run(args, check=True, timeout=600, **kw):
    """Run tern with args; return CompletedProcess (text)."""
    proc = subprocess.run([TERN] + args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError("tern %s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def start(args, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([TERN] + args, stdout=log, stderr=subprocess.STDOUT)
    _procs.append(proc)
    return proc


def stop(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("process did not stop within %ds after signal %d" % (timeout, sig))


def cleanup():
    for proc in _procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_broker(work, extra=()):
    """`tern broker` in its own process; returns (proc, bootstrap address)."""
    path = os.path.join(work, "bootstrap")
    proc = start(["broker", "--bootstrap-file", path] + list(extra), os.path.join(work, "broker.log"))
    wait_until(lambda: os.path.exists(path), 30, "broker bootstrap file")
    with open(path) as f:
        return proc, f.read().strip()


def wait_until(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


def consume(brokers, topic, schema=None, count=None, idle_ms=3000):
    """Read a topic from the beginning with the independent consumer."""
    args = [CONSUME, "-b", brokers, "-t", topic, "-i", str(idle_ms)]
    if schema:
        args += ["-s", os.path.join(SCHEMAS, schema)]
    if count is not None:
        args += ["-n", str(count)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError("tern-test-consume failed: " + out.stderr[-2000:])
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def inspect(state, *what, check=True):
    proc = run(["inspect", "--state-dir", state] + list(what), check=check)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


def committed(state, unreadable=0):
    """The next input offset stored with the state, summed over partitions:
    0 before there is any state; `unreadable` when `tern inspect` cannot
    read it right now (a kill test polls while tern writes)."""
    if not os.path.exists(os.path.join(state, "CURRENT")):
        return 0
    proc = subprocess.run([TERN, "inspect", "--state-dir", state, "offsets"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return unreadable
    try:
        return sum(o["next_offset"] for o in json.loads(proc.stdout)["offsets"])
    except ValueError:
        return unreadable


def write_jsonl(path, events):
    with open(path, "w") as f:
        for ev in events:
            f.write(json.dumps(ev) + "\n")


def event(eid, user, item, etype, ts, **extra):
    ev = {"event_id": eid, "user_id": user, "item_id": item, "category_id": None,
          "event_type": etype, "ts_ms": ts, "price": None, "quantity": None,
          "impression_id": None, "campaign_id": None, "context": {}}
    ev.update(extra)
    return ev


def b36(n):
    """n in base 36 (short ids)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def shop_stream(path, events, seed, users_n, items_n, t0=1700000000000):
    """Write a seeded jsonl shop stream for crash tests; return (records,
    invalid records). Users on Zipf-skewed items, views, carts, purchases,
    favourites, impressions and clicks on some of them (CTR join), weeks
    of event time (churn labels), one invalid event in ~20k (dead letters).
    Short ids: the embedded broker keeps ~5 MiB per partition."""
    rng = random.Random(seed)
    items = ["i%04d" % k for k in range(items_n)]
    weights = [1.0 / (k + 1) ** 1.1 for k in range(items_n)]
    users = ["u%04d" % k for k in range(users_n)]
    # a few users come back often, most rarely: churn has both labels
    user_w = [1.0 / (k + 1) ** 0.7 for k in range(users_n)]
    types = ["VIEW"] * 55 + ["CART"] * 7 + ["PURCHASE"] * 3 + ["FAVORITE"] * 5 + ["IMPRESSION"] * 30
    picks = rng.choices(items, weights=weights, k=events)
    who = rng.choices(users, weights=user_w, k=events)
    pending = collections.deque(maxlen=2000)  # recent impressions that may be clicked
    ts, invalid, k = t0, 0, 0
    with open(path, "w") as f:
        while k < events:
            ts += rng.randint(0, 22000)
            user, item = who[k], picks[k]
            if pending and rng.random() < 0.05:
                imp_ts, imp_user, imp_item, imp = pending.popleft()
                etype = "CLICK"
                user, item = imp_user, imp_item
                extra = {"impression_id": imp}
            else:
                etype = rng.choice(types)
                extra = {}
            ev = {"event_id": b36(k), "user_id": user, "item_id": item,
                  "category_id": "c%d" % (int(item[1:]) % 40), "event_type": etype, "ts_ms": ts,
                  "price": None, "quantity": None, "impression_id": None,
                  "campaign_id": None, "context": {}}
            ev.update(extra)
            if etype == "PURCHASE":
                ev["price"] = round(rng.uniform(1, 300), 2)
                ev["quantity"] = rng.randint(1, 3)
            elif etype == "IMPRESSION":
                ev["impression_id"] = "m" + b36(k)
                ev["campaign_id"] = "k%d" % rng.randint(0, 30)
                ev["context"] = {"p": rng.choice("fsb")}
                if rng.random() < 0.3:
                    pending.append((ts, user, item, ev["impression_id"]))
            if k % 20011 == 777:  # dead letters
                ev["user_id"] = ""
                invalid += 1
            f.write(json.dumps(ev) + "\n")
            k += 1
    return events, invalid


class Tests:
    """Minimal runner: methods named test_* run in order; closing line for CI."""

    def main(self):
        names = [n for n in dir(self) if n.startswith("test_")]
        names.sort(key=lambda n: getattr(type(self), n).__code__.co_firstlineno)
        passed = failed = 0
        try:
            for name in names:
                if len(sys.argv) > 1 and sys.argv[1] not in name:
                    continue
                t0 = time.time()
                try:
                    getattr(self, name)()
                    print("ok   %s (%.1fs)" % (name, time.time() - t0), flush=True)
                    passed += 1
                except Exception as e:  # noqa: BLE001 - report every failure
                    print("FAIL %s: %s" % (name, e), flush=True)
                    failed += 1
        finally:
            cleanup()
        print("%d passed, %d failed" % (passed, failed))
        sys.exit(1 if failed else 0)
