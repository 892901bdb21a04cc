"""0010-e2e_broker: `tern broker` + `tern produce` + `tern run` over TCP.

Outputs are read back by an independent consumer (librdkafka + Avro-C's
generic reader, not tern's encoders). Bad records reach the dead-letter
topic with reason and source offset; a restart resumes from the offsets
stored with the state and counts nothing twice.
"""
import math
import os
import subprocess

from ternlib import (Tests, consume, event, inspect, run, start, start_broker, stop,
                     wait_until, workdir, write_jsonl)

T0 = 1700000000000


def phase1():
    return [
        event("e1", "u1", "i1", "VIEW", T0 + 1000),
        event("e2", "u1", "i2", "VIEW", T0 + 2000),
        event("e3", "u1", "i3", "CART", T0 + 3000, price=9.5, quantity=2),
        event("e4", "u2", "i1", "VIEW", T0 + 1500),
        event("e5", "u2", "i3", "VIEW", T0 + 2500),
        event("e6", "u3", "i1", "IMPRESSION", T0 + 1000, impression_id="imp1"),
        event("bad1", "", "i1", "VIEW", T0 + 1000),          # no user_id
        event("bad2", "u4", "i1", "VIEW", 4102444800001),    # ts_ms out of range
    ]


def phase2():
    return [event("e7", "u1", "i4", "PURCHASE", T0 + 10000, price=20.0)]


class E2E(Tests):
    def setUp(self):
        self.work = workdir("e2e")
        self.broker, self.brokers = start_broker(self.work, ["-X", "topics.input_partitions=2"])
        self.state = os.path.join(self.work, "state")
        self.common = ["-X", "kafka.brokers=" + self.brokers, "-X", "state.dir=" + self.state,
                       "-X", "kafka.session_timeout_ms=6000", "-X", "batch.max_ms=50"]

    def produce(self, events, name):
        path = os.path.join(self.work, name)
        write_jsonl(path, events)
        out = run(["produce", "--input", path, "--format", "jsonl", "-X", "kafka.brokers=" + self.brokers])
        assert '"produced":%d' % len(events) in out.stdout, out.stdout

    def produce_garbage(self):
        # Any Kafka client can talk to the embedded broker: kcat sends bytes
        # that are not Avro at all.
        subprocess.run(["kcat", "-P", "-b", self.brokers, "-t", "behavior-events", "-k", "u5", "-p", "0"],
                       input=b"\x02this is not avro", check=True, timeout=60)

    def committed_total(self):
        doc = inspect(self.state, "offsets", check=False)
        return sum(o["next_offset"] for o in doc["offsets"]) if doc else 0

    def run_until(self, total, log):
        proc = start(["run"] + self.common, os.path.join(self.work, log))
        wait_until(lambda: self.committed_total() >= total, 120, "offsets committed to reach %d" % total)
        assert stop(proc) == 0, "tern run did not exit 0 on SIGTERM"

    def test_flow(self):
        self.setUp()
        self.produce(phase1(), "phase1.jsonl")
        self.produce_garbage()
        self.run_until(9, "run1.log")

        recs = consume(self.brokers, "recommendations", "recommendation.avsc")
        # Counted events: e1..e5 (IMPRESSION and invalid ones are not).
        assert len(recs) == 5, "expected 5 recommendation records, got %d" % len(recs)
        by_user = {}
        for r in recs:
            v = r["value"]
            assert v["config_version"] == 1
            assert v["source_topic"] == "behavior-events"
            assert r["key"] == v["user_id"]
            by_user.setdefault(v["user_id"], []).append(v)
        last_u2 = max(by_user["u2"], key=lambda v: v["generated_at"])
        assert last_u2["generated_at"] == T0 + 2500
        # u2 saw i1 and i3; i2 co-occurs with both and is unseen -- once u1's
        # events (maybe on the other partition) have been processed.
        items = [i["item_id"] for i in last_u2["items"]]
        assert items == ["i2"] or (items == [] and last_u2["strategy"] == "trending"), last_u2

        dlq = consume(self.brokers, "tern-dead-letter", "dead_letter.avsc")
        reasons = sorted(d["value"]["reason"] for d in dlq)
        assert reasons == ["decode", "invalid", "invalid"], reasons
        for d in dlq:
            v = d["value"]
            assert v["source_topic"] == "behavior-events" and v["source_offset"] >= 0
            assert v["error"], "dead letter without error text"
            assert v["config_version"] == 1, v
        garbage = [d for d in dlq if d["value"]["reason"] == "decode"][0]
        assert garbage["value_bytes_base64"]["raw"] == "AnRoaXMgaXMgbm90IGF2cm8=", garbage

        u1 = inspect(self.state, "user", "u1")
        assert u1["events"]["VIEW"] == 2 and u1["events"]["CART"] == 1, u1
        assert u1["first_ts_ms"] == T0 + 1000 and u1["last_ts_ms"] == T0 + 3000
        assert [w["item_id"] for w in u1["window"]] == ["i3", "i2", "i1"], u1["window"]
        u3 = inspect(self.state, "user", "u3")
        assert u3["events"]["IMPRESSION"] == 1 and u3["window"] == [], u3

        # Restart: only the new event is processed; nothing is counted twice.
        self.produce(phase2(), "phase2.jsonl")
        self.run_until(10, "run2.log")
        u1 = inspect(self.state, "user", "u1")
        assert u1["events"]["VIEW"] == 2 and u1["events"]["PURCHASE"] == 1, u1
        item = inspect(self.state, "item", "i1")
        assert item["n"] == 2, item
        got = [(nb["item_id"], nb["c"]) for nb in item["neighbors"]]
        assert got == [("i3", 2), ("i2", 1), ("i4", 1)], got
        assert math.isclose(item["neighbors"][0]["score"], 1.0)
        assert math.isclose(item["neighbors"][1]["score"], 1 / math.sqrt(2))
        recs = consume(self.brokers, "recommendations", "recommendation.avsc")
        assert len(recs) == 6, "restart re-published or lost outputs: %d" % len(recs)
        stop(self.broker)


if __name__ == "__main__":
    E2E().main()
