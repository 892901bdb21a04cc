"""0026-control: live control of a running `tern run` on `tern broker`.

`tern control` publishes a block and a boost; the next recommendation
drops the blocked item, ranks the boosted one first and carries the new
config_version, and so do the ctr-scores. An invalid record written with
kcat lands on the dead-letter topic with its reason, source offset and the
config_version of the time, and changes nothing.
After a restart `tern inspect control` and the outputs keep the live
config (a category boost then uses the item catalog stored with the
state). SIGHUP applies a changed live key and refuses a changed non-live
one, naming key and file. /metrics counts the applied and rejected records
and places the last applied one, across the restart too.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

from ternlib import (Tests, committed, consume, event, inspect, run, start, start_broker,
                     stop, wait_until, workdir, write_jsonl)

T0 = 1700000000000
UNTIL = T0 + 10 ** 9


def phase1():
    """i1's neighbours: i2 and i3 (c=2), i4 (c=1)."""
    evs = []
    for u, items in (("uA", ["i1", "i2", "i3"]), ("uB", ["i1", "i2"]), ("uC", ["i1", "i3", "i4"])):
        for item in items:
            evs.append(event("e%d" % len(evs), u, item, "VIEW", T0 + 1000 * len(evs),
                             category_id="cx" if item == "i3" else "cy"))
    return evs


class Control(Tests):
    def setUp(self):
        self.work = workdir("control")
        self.broker, self.brokers = start_broker(self.work, ["-X", "topics.input_partitions=1"])
        self.state = os.path.join(self.work, "state")
        self.conf = os.path.join(self.work, "tern.yaml")
        self.write_conf(max_ms=50, threshold=0.8)
        self.produced = 0
        self.runs = 0

    def write_conf(self, max_ms, threshold):
        with open(self.conf, "w") as f:
            f.write("kafka:\n  brokers: \"%s\"\n  session_timeout_ms: 6000\n"
                    "state:\n  dir: \"%s\"\nbatch:\n  max_ms: %d\n"
                    "recommendations:\n  ctr_weight: 0\n"
                    "churn:\n  alert_threshold: %s\n"
                    "http:\n  listen: 127.0.0.1:0\n" % (self.brokers, self.state, max_ms, threshold))

    def produce(self, events):
        path = os.path.join(self.work, "in%d.jsonl" % self.produced)
        write_jsonl(path, events)
        run(["produce", "-c", self.conf, "--input", path, "--format", "jsonl"])
        self.produced += len(events)
        wait_until(lambda: committed(self.state) >= self.produced, 60,
                   "%d events committed" % self.produced)

    def start_tern(self):
        self.runs += 1
        self.log = os.path.join(self.work, "run%d.log" % self.runs)
        self.proc = start(["run", "-c", self.conf], self.log)

    def control(self, *args, check=True):
        out = run(["control", "-c", self.conf] + list(args), check=check)
        if check:
            doc = json.loads(out.stdout)
            assert doc["topic"] == "tern-control" and doc["offset"] >= 0, doc
        return out

    def metrics(self):
        """The control samples of /metrics: {(name, labels text): value}."""
        with open(self.log) as f:
            port = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        assert port, "no 'listening on' line in %s" % self.log
        url = "http://127.0.0.1:%s/metrics" % port.group(1)
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        return {m.group(1, 2): float(m.group(3)) for m in
                re.finditer(r"^(tern_control_[a-z_]+)(\{[^}]*\})? (\S+)$", text, re.M)}

    def wait_metrics(self, applied, rejected, offset):
        want = {("tern_control_records_total", '{result="applied"}'): applied,
                ("tern_control_records_total", '{result="rejected"}'): rejected,
                ("tern_control_last_applied_offset", '{partition="0"}'): offset}
        deadline = time.time() + 30
        while True:
            try:
                got = self.metrics()
            except (OSError, AssertionError):
                got = {}
            if got == want:
                return
            if time.time() > deadline:
                raise AssertionError("/metrics control samples %s, want %s" % (got, want))
            time.sleep(0.2)

    def live(self):
        return inspect(self.state, "control", check=False)

    def wait_version(self, version):
        wait_until(lambda: (self.live() or {}).get("config_version") == version, 30,
                   "config_version %d in the state" % version)
        return self.live()

    def recs_of(self, user):
        recs = [r["value"] for r in consume(self.brokers, "recommendations", "recommendation.avsc",
                                            idle_ms=1500)
                if r["value"]["user_id"] == user]
        assert len(recs) == 1, "%s: %d recommendation records" % (user, len(recs))
        return recs[0]

    def impression(self, imp, seq):
        """The config_version of the ctr-score of a new impression (event
        time just after probe seq's)."""
        self.produce([event("x%d" % seq, "z%d" % seq, "i9", "IMPRESSION",
                            T0 + 100500 + seq * 1000, impression_id=imp)])
        scores = [r["value"] for r in consume(self.brokers, "ctr-scores", "ctr_score.avsc",
                                              idle_ms=1500)
                  if r["value"]["impression_id"] == imp]
        assert len(scores) == 1, "%s: %d ctr-scores" % (imp, len(scores))
        return scores[0]["config_version"]

    def probe(self, user, seq):
        self.produce([event("p%d" % seq, user, "i1", "VIEW", T0 + 100000 + seq * 1000)])
        rec = self.recs_of(user)
        return [i["item_id"] for i in rec["items"]], rec

    def test_live_control(self):
        self.setUp()
        self.produce_phase1_and_start()
        items, rec = self.probe("q1", 1)
        assert items == ["i2", "i3", "i4"] and rec["config_version"] == 1, rec
        assert self.impression("imp-a", 1) == 1

        # Block i2, boost i4 x5: applied between batches, version 3.
        self.control("--block-item", "i2", "--by", "test")
        self.control("--boost-item", "i4", "--factor", "5", "--until", str(UNTIL))
        # tern control validates before writing: nothing is produced.
        bad = self.control("--boost-item", "i3", "--factor", "-1", check=False)
        assert bad.returncode == 2 and "factor" in bad.stderr, bad.stderr
        # An operator's kcat record is validated by tern itself.
        subprocess.run(["kcat", "-P", "-b", self.brokers, "-t", "tern-control", "-k", "ops"],
                       input=b'{"op":"boost","item":"i3","factor":-1}', check=True, timeout=60)
        wait_until(lambda: (self.live() or {}).get("rejected") == 1, 30, "the invalid record")
        live = self.live()
        assert live["config_version"] == 3, live
        assert live["blocked"] == ["i2"], live
        assert live["boosts"]["items"] == [{"id": "i4", "factor": 5, "until_ts_ms": UNTIL}], live
        assert live["control"]["offsets"] == [{"partition": 0, "next_offset": 3}], live
        assert live["last"]["record"]["op"] == "boost", live
        self.wait_metrics(applied=2, rejected=1, offset=1)

        items, rec = self.probe("q2", 2)
        assert items == ["i4", "i3"] and rec["config_version"] == 3, rec
        # s(i1,i4) = c / sqrt(n(i1) n(i4)) = 1 / sqrt(5 * 1) (q1, q2 viewed i1)
        assert abs(rec["items"][0]["score"] - 5 / 5 ** 0.5) < 1e-9, rec
        assert self.impression("imp-b", 2) == 3

        dlq = [d["value"] for d in consume(self.brokers, "tern-dead-letter", "dead_letter.avsc",
                                           idle_ms=1500)]
        assert len(dlq) == 1, dlq
        d = dlq[0]
        assert d["reason"] == "control" and "factor" in d["error"], d
        assert d["source_topic"] == "tern-control" and d["source_offset"] == 2, d
        assert d["raw"] == '{"op":"boost","item":"i3","factor":-1}', d
        assert d["config_version"] == 3, d  # after the block and boost before it

        # Restart: the live config comes back from the state.
        assert stop(self.proc) == 0
        live = self.live()
        assert live["config_version"] == 3 and live["blocked"] == ["i2"], live
        self.start_tern()
        self.wait_metrics(applied=2, rejected=1, offset=1)  # from the state
        # A category boost: i3 is in category cx (the catalog was stored).
        self.control("--boost-category", "cx", "--factor", "10", "--for", "1d")
        self.wait_version(4)
        items, rec = self.probe("q3", 3)
        assert items == ["i3", "i4"] and rec["config_version"] == 4, rec
        self.wait_metrics(applied=3, rejected=1, offset=3)

        # SIGHUP: a live key applies, a non-live key is refused.
        self.write_conf(max_ms=60, threshold=0.65)
        self.proc.send_signal(signal.SIGHUP)
        live = self.wait_version(5)
        assert live["churn"]["alert_threshold"] == 0.65, live
        assert live["last"]["origin"] == "sighup", live
        with open(self.log) as f:
            log = f.read()
        assert "batch.max_ms changed in %s" % self.conf in log and "refused" in log, log[-2000:]
        items, rec = self.probe("q4", 4)
        assert items == ["i3", "i4"] and rec["config_version"] == 5, rec
        assert stop(self.proc) == 0
        assert self.live()["config_version"] == 5
        stop(self.broker)

    def produce_phase1_and_start(self):
        self.start_tern()
        self.produce(phase1())


if __name__ == "__main__":
    Control().main()
