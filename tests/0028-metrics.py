"""0028-metrics: /metrics, /healthz and /readyz scraped during a replay.

`tern replay --http 127.0.0.1:0 --linger-seconds N` serves the endpoint on
a free port (read from its "listening on" log line). The test scrapes
/metrics over and over WHILE the replay runs (every counter and histogram
sample never decreases, and some scrape lands midway), watches /readyz go
503 (starting) -> 200 -> 503 (stopped), and once the summary is printed
checks the final scrape against it: records and events (by type, counted
in the input file), dead letters, outputs by topic, batches (= the commit
histogram's _count), model examples, logloss and AUC (bit-exact), lag 0.

Two inputs: the Taobao slice from ../shared/data (real data; skipped with
a message when absent), and a seeded shop stream (ternlib.shop_stream)
with dead letters, CTR clicks and churn labels, so every counter moves.
The README's metric table must be `tern config --metrics`.
"""
import collections
import json
import math
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from ternlib import SRC, TERN, Tests, _procs, data_dir, run, shop_stream, workdir

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SHOP = ["-X", "churn.inactive_days=3", "-X", "churn.score_interval_days=1",
        "-X", "ctr.attribution_window_seconds=120",
        "-X", "batch.max_events=2000", "-X", "batch.max_ms=50",
        "-X", "state.malloc_trim_seconds=1"]
TAOBAO_TYPES = {"pv": "view", "fav": "favorite", "cart": "cart", "buy": "purchase"}


def parse(text):
    """Prometheus text format 0.0.4 -> ({(name, labels): value}, {name: type}).
    Checks every sample's family has # HELP and # TYPE before it."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            helps.add(line.split(" ", 3)[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = LINE.match(line)
        assert m, "unparsable sample line: %r" % line
        name, labels = m.group(1), tuple(sorted(LABEL.findall(m.group(3) or "")))
        family = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        assert family in types and family in helps, "no # HELP/# TYPE for " + name
        samples[(name, labels)] = float(m.group(4))  # float() takes NaN, +Inf
    return samples, types


def get(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def monotonic_keys(samples, types):
    """The samples that must never decrease: counters and histograms."""
    for (name, labels) in samples:
        family = re.sub(r'_(bucket|sum|count)$', '', name)
        if types.get(name) == "counter" or types.get(family) == "histogram":
            yield (name, labels)


def same(metric, summary_value):
    if summary_value is None:
        return math.isnan(metric)
    return metric == summary_value


class Replay:
    """A lingering `tern replay --http 127.0.0.1:0`, scraped until it ends."""

    def __init__(self, work, args):
        self.out_path = os.path.join(work, "summary.json")
        self.err_path = os.path.join(work, "stderr.log")
        out, err = open(self.out_path, "w"), open(self.err_path, "w")
        self.proc = subprocess.Popen([TERN, "replay", "--http", "127.0.0.1:0", "--linger-seconds", "120"]
                                     + args, stdout=out, stderr=err)
        _procs.append(self.proc)
        self.port = self.wait_port()

    def wait_port(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.err_path) as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                return int(m.group(1))
            assert self.proc.poll() is None, "replay exited: " + open(self.err_path).read()[-2000:]
            time.sleep(0.02)
        raise AssertionError("no 'listening on' line within 30 s")

    def summary(self):
        with open(self.out_path) as f:
            text = f.read()
        return json.loads(text) if text.endswith("\n") else None

    def scrape_until_done(self):
        """Scrape while the replay runs; returns (summary, scrapes, ready codes)."""
        scrapes, ready = [], []
        deadline = time.time() + 120
        while time.time() < deadline:
            done = self.summary()
            code, _, _ = get(self.port, "/readyz")
            ready.append(code)
            status, headers, body = get(self.port, "/metrics")
            assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
            scrapes.append(parse(body))
            if done is not None:  # this scrape came after the summary: final
                return done, scrapes, ready
            assert self.proc.poll() is None, "replay exited early: " + open(self.err_path).read()[-2000:]
            time.sleep(0.05)
        raise AssertionError("replay did not finish within 120 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        assert rc == 0, "lingering replay exited %d after SIGTERM" % rc


def check_monotonic(scrapes):
    for (prev, _), (cur, types) in zip(scrapes, scrapes[1:]):
        for key in monotonic_keys(prev, types):
            assert key in cur, "%s disappeared" % (key,)
            assert cur[key] >= prev[key], "%s went down: %s -> %s" % (key, prev[key], cur[key])


def check_final(s, types, summary, by_type, trimming=False):
    """The final scrape against the replay summary."""
    assert value(s, "tern_records_in_total") == summary["records_in"]
    for t, n in by_type.items():
        assert value(s, "tern_events_in_total", type=t) == n, (t, n)
    assert sum(v for (n, _), v in s.items() if n == "tern_events_in_total") == summary["events_in"]
    assert value(s, "tern_dead_lettered_total") == summary["dead_lettered"]
    outputs = {dict(l)["topic"]: v for (n, l), v in s.items() if n == "tern_outputs_total"}
    assert outputs == {k: float(v) for k, v in summary["outputs"].items()}, (outputs, summary["outputs"])
    batches = value(s, "tern_batches_total")
    assert batches == summary["batches"] > 0
    h = "tern_batch_commit_seconds"
    assert types[h] == "histogram"
    assert value(s, h + "_count") == batches == value(s, h + "_bucket", le="+Inf")
    buckets = sorted((float(dict(l)["le"]), v) for (n, l), v in s.items() if n == h + "_bucket")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    assert 0 < value(s, h + "_sum") < batches * 60
    ctr, churn = summary["ctr"], summary["churn"]
    assert value(s, "tern_model_examples_total", model="ctr") == ctr["examples"]
    assert value(s, "tern_model_examples_total", model="churn") == churn["labelled"]
    assert same(value(s, "tern_model_logloss", model="ctr"), ctr["logloss"])
    assert same(value(s, "tern_model_auc", model="ctr"), ctr["auc"])
    if churn["labelled"]:
        assert same(value(s, "tern_model_logloss", model="churn"), churn["logloss"])
    if churn["positives"] and churn["positives"] < churn["labelled"]:
        assert same(value(s, "tern_model_auc", model="churn"), churn["auc"])
    assert value(s, "tern_drift_events_total", model="churn") == churn["drifts"]
    assert value(s, "tern_churn_alerts_total") == churn["alerts"]
    assert value(s, "tern_consumer_lag", partition="0", topic="behavior-events") == 0
    assert value(s, "tern_rocksdb_size_bytes") > 0
    mem = {p: value(s, "tern_memory_bytes", part=p) for p in
           ("memtables", "block_cache", "block_cache_pinned", "table_readers",
            "heap_in_use", "heap_held", "heap_main_held", "heap_main_free",
            "heap_other_held", "heap_other_free", "pools")}
    assert mem["memtables"] > 0 and 0 < mem["heap_in_use"] <= mem["heap_held"], mem
    # by arena (malloc_info): the loop's main arena holds something, and each
    # arena's free bytes are part of what it holds
    assert 0 < mem["heap_main_free"] <= mem["heap_main_held"], mem
    assert mem["heap_other_free"] <= mem["heap_other_held"], mem
    # the pools of the loop's long-lived objects: users and items at least,
    # in whole 64 KiB slabs
    assert mem["pools"] >= 2 * 65536 and mem["pools"] % 65536 == 0, mem
    # state.malloc_trim_seconds: off by default; the first trim at the first commit
    assert types["tern_malloc_trims_total"] == "counter"
    if trimming:
        assert 1 <= value(s, "tern_malloc_trims_total") <= batches
        assert 0 < value(s, "tern_malloc_trim_seconds_total") < 60
    else:
        assert value(s, "tern_malloc_trims_total") == 0
        assert value(s, "tern_malloc_trim_seconds_total") == 0
    assert value(s, "tern_config_version") == 1
    assert value(s, "tern_ready") == 0  # the loop has returned
    assert [l for (n, l) in s if n == "tern_build_info"], "no tern_build_info"


def check_during(scrapes, ready, total):
    check_monotonic(scrapes)
    midway = [s for s, _ in scrapes if 0 < value(s, "tern_records_in_total") < total]
    assert midway, "no scrape landed during the replay (%d scrapes)" % len(scrapes)
    assert any(value(s, "tern_ready") == 1 for s, _ in scrapes)
    # readiness: 503 until assigned and polled, 200 while running, 503 after
    first_ok = ready.index(200)
    assert first_ok > 0 and ready[0] == 503, ready[:5]
    assert ready[-1] == 503, ready[-5:]
    return len(midway)


class Metrics(Tests):
    def __init__(self):
        self.work = workdir("metrics")

    def test_taobao(self):
        """The Taobao slice: counters during and after the replay."""
        d = data_dir()
        path = d and os.path.join(d, "taobao_userbehavior_time_slice", "UserBehavior.csv")
        if not path or not os.path.exists(path):
            print("skipped: ../shared/data/taobao_userbehavior_time_slice absent")
            return
        by_type = collections.Counter({t: 0 for t in ("view", "click", "cart", "favorite", "purchase",
                                                      "impression")})
        with open(path) as f:
            for line in f:
                by_type[TAOBAO_TYPES[line.rstrip("\n").split(",")[3]]] += 1
        r = Replay(self.work, ["--format", "taobao-csv", "--input", path,
                               "--state-dir", os.path.join(self.work, "T")])
        summary, scrapes, ready = r.scrape_until_done()
        midway = check_during(scrapes, ready, summary["records_in"])
        check_final(*scrapes[-1], summary, by_type)
        code, _, body = get(r.port, "/healthz")
        assert code == 503 and json.loads(body)["status"] == "stopped", (code, body)
        code, _, body = get(r.port, "/readyz")
        assert code == 503 and json.loads(body)["status"] == "stopped", (code, body)
        r.stop()
        print("     %d scrapes, %d midway, %d batches" % (len(scrapes), midway, summary["batches"]))

    def test_shop_stream(self):
        """Dead letters, CTR and churn examples, alerts: all counters move."""
        path = os.path.join(self.work, "shop.jsonl")
        total, invalid = shop_stream(path, 45000, 28, 3000, 3000)
        by_type = collections.Counter({t: 0 for t in ("view", "click", "cart", "favorite", "purchase",
                                                      "impression")})
        with open(path) as f:
            for line in f:
                ev = json.loads(line)
                if ev["user_id"]:
                    by_type[ev["event_type"].lower()] += 1
        r = Replay(self.work, ["--format", "jsonl", "--input", path,
                               "--state-dir", os.path.join(self.work, "S")] + SHOP)
        code, _, body = get(r.port, "/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok", (code, body)
        summary, scrapes, ready = r.scrape_until_done()
        assert summary["dead_lettered"] == invalid > 0, summary
        assert summary["ctr"]["examples"] > 0 and summary["churn"]["labelled"] > 0, summary
        check_during(scrapes, ready, total)
        check_final(*scrapes[-1], summary, by_type, trimming=True)
        r.stop()

    def test_http_errors(self):
        """404, 405, HEAD; a bad http.listen is a config error (exit 2); a
        port in use fails the start (exit 1) with the address named."""
        path = os.path.join(self.work, "tiny.jsonl")
        with open(path, "w") as f:
            f.write(json.dumps({"event_id": "e1", "user_id": "u1", "item_id": "i1", "category_id": None,
                                "event_type": "VIEW", "ts_ms": 1700000000000, "price": None,
                                "quantity": None, "impression_id": None, "campaign_id": None,
                                "context": {}}) + "\n")
        r = Replay(self.work, ["--format", "jsonl", "--input", path,
                               "--state-dir", os.path.join(self.work, "E")])
        assert get(r.port, "/nope")[0] == 404
        assert get(r.port, "/metrics", method="POST")[0] == 405
        status, headers, body = get(r.port, "/metrics", method="HEAD")
        assert status == 200 and body == "" and int(headers["Content-Length"]) > 0, (status, headers)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            p = run(["replay", "--format", "jsonl", "--input", path, "--http", "127.0.0.1:%d" % port,
                     "--state-dir", os.path.join(self.work, "E2")], check=False, timeout=60)
            assert p.returncode == 1 and "127.0.0.1:%d" % port in p.stderr, (p.returncode, p.stderr)
        for bad in ("9464", "localhost:99999", "::1:9464", "host:"):
            p = run(["replay", "--format", "jsonl", "--input", path, "--http", bad], check=False)
            assert p.returncode == 2 and "http.listen" in p.stderr, (bad, p.returncode, p.stderr)
        r.stop()

    def test_readme_table(self):
        """README's metric list is the formatter's table."""
        table = run(["config", "--metrics"]).stdout
        with open(os.path.join(SRC, "README.md")) as f:
            readme = f.read()
        m = re.search(r"<!-- metrics-reference:begin -->\n(.*?)<!-- metrics-reference:end -->", readme, re.S)
        assert m, "README.md has no metrics-reference block"
        assert m.group(1) == table, "README metric table differs from `tern config --metrics`"


if __name__ == "__main__":
    Metrics().main()
