"""0030-registry_e2e: `tern run` against a Schema Registry on loopback.

The test starts `tern broker`, a small Schema Registry (Python http.server
on 127.0.0.1 serving /schemas/ids/N and counting requests), and writes
Confluent-framed records of evolved writer schemas with kcat (tern's own
producer only writes its built-in schema), encoded by a tiny Avro binary
encoder here. Checked through tern's state and the dead-letter topic:
evolution (added field skipped, removed fields defaulted, int->long,
float->double, enum by symbol), one request per schema id, an
incompatible schema and an unknown id dead-lettered with their reasons
while the pipeline keeps going; then, with the registry gone, a restart
served from the disk cache, input.schema_dir as local fallback, and an id
found nowhere dead-lettered as retriable. Each run's /metrics counts its
registry requests and where each lookup was answered.
"""
import http.server
import json
import os
import re
import struct
import subprocess
import threading
import time
import urllib.request

from ternlib import (Tests, committed, consume, inspect, start, start_broker, stop,
                     wait_until, workdir)

T0 = 1700000000000

ENUM = {"type": "enum", "name": "EventType",
        "symbols": ["PURCHASE", "CART", "VIEW", "CLICK", "FAVORITE", "IMPRESSION"]}

# id 21: adds "coupon", ts_ms as int (seconds would not fit T0: the test
# uses small ts values), price as float, EventType reordered; no
# category_id, quantity, impression_id, campaign_id, context.
EVOLVED = {"type": "record", "name": "BehaviorEvent", "namespace": "tern", "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "coupon", "type": ["null", "string"]},
    {"name": "user_id", "type": "string"},
    {"name": "item_id", "type": ["null", "string"]},
    {"name": "event_type", "type": ENUM},
    {"name": "ts_ms", "type": "int"},
    {"name": "price", "type": "float"},
]}
# id 22: the built-in layout minus context, plus a long ts_ms: a removed
# field with a reader default.
PLAIN = {"type": "record", "name": "BehaviorEvent", "namespace": "tern", "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "user_id", "type": "string"},
    {"name": "item_id", "type": ["null", "string"]},
    {"name": "event_type", "type": ENUM},
    {"name": "ts_ms", "type": "long"},
    {"name": "quantity", "type": ["null", "int"]},
]}
# id 23: ts_ms became a string -> cannot be read as tern's long.
INCOMPATIBLE = {"type": "record", "name": "BehaviorEvent", "namespace": "tern", "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "user_id", "type": "string"},
    {"name": "event_type", "type": ENUM},
    {"name": "ts_ms", "type": "string"},
]}


# ---- a tiny Avro binary encoder (the types the schemas above use) ----

def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7f:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode(schema, value):
    t = schema if isinstance(schema, str) else schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, list):  # union: [null, T]
        if value is None:
            return zigzag(schema.index("null"))
        branch = [i for i, b in enumerate(schema) if b != "null"][0]
        return zigzag(branch) + encode(schema[branch], value)
    if t == "string":
        raw = value.encode()
        return zigzag(len(raw)) + raw
    if t in ("int", "long"):
        return zigzag(value)
    if t == "float":
        return struct.pack("<f", value)
    if t == "double":
        return struct.pack("<d", value)
    if t == "enum":
        return zigzag(schema["symbols"].index(value))
    if t == "record":
        return b"".join(encode(f["type"], value.get(f["name"])) for f in schema["fields"])
    raise ValueError("unsupported type %r" % (schema,))


def framed(schema_id, schema, value):
    return b"\x00" + struct.pack(">i", schema_id) + encode(schema, value)


# ---- the loopback registry ----

class Registry:
    def __init__(self, schemas):
        self.schemas = schemas
        self.requests = {}
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                parts = self.path.strip("/").split("/")
                sid = int(parts[2]) if len(parts) == 3 and parts[:2] == ["schemas", "ids"] else -1
                registry.requests[sid] = registry.requests.get(sid, 0) + 1
                if sid in registry.schemas:
                    status, body = 200, {"schema": json.dumps(registry.schemas[sid])}
                else:
                    status, body = 404, {"error_code": 40403, "message": "Schema not found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ev(eid, user, item, etype, ts, **extra):
    v = {"event_id": eid, "user_id": user, "item_id": item, "event_type": etype, "ts_ms": ts}
    v.update(extra)
    return v


def lookups(requests, **results):
    """The registry's /metrics samples of one run."""
    out = {("tern_schema_registry_requests_total", None): requests,
           ("tern_schema_registry_cache_write_failures_total", None): 0}
    for result in ("memory", "cache", "registry", "schema_dir", "failed", "failed_cached"):
        out[("tern_schema_registry_lookups_total", '{result="%s"}' % result)] = \
            results.get(result, 0)
    return out


class RegistryE2E(Tests):
    def produce(self, records, tag):
        paths = []
        for k, rec in enumerate(records):
            path = os.path.join(self.work, "%s-%02d.bin" % (tag, k))
            with open(path, "wb") as f:
                f.write(rec)
            paths.append(path)
        # one file = one message; one partition keeps their order
        subprocess.run(["kcat", "-P", "-b", self.brokers, "-t", "behavior-events", "-p", "0",
                        "-k", "k"] + paths, check=True, timeout=60)

    def run_until(self, total, log, extra, metrics):
        """Run until total offsets are committed and /metrics shows the
        registry samples metrics ({(name, labels text): value}, all of them)."""
        args = ["run", "-X", "kafka.brokers=" + self.brokers, "-X", "state.dir=" + self.state,
                "-X", "kafka.session_timeout_ms=6000", "-X", "batch.max_ms=50",
                "-X", "input.schema_registry_timeout_ms=2000",
                "-X", "http.listen=127.0.0.1:0"] + extra
        proc = start(args, os.path.join(self.work, log))
        wait_until(lambda: committed(self.state) >= total, 120,
                   "offsets committed to reach %d" % total)
        deadline = time.time() + 30
        while True:
            got = self.registry_metrics(log)
            if got == metrics:
                break
            assert time.time() < deadline, "/metrics registry samples %s, want %s" % (got, metrics)
            time.sleep(0.2)
        assert stop(proc) == 0, "tern run did not exit 0 on SIGTERM"
        with open(os.path.join(self.work, log)) as f:
            return f.read()

    def registry_metrics(self, log):
        with open(os.path.join(self.work, log)) as f:
            port = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        assert port, "no 'listening on' line in " + log
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port.group(1),
                                    timeout=10) as r:
            text = r.read().decode()
        return {m.group(1, 2): float(m.group(3)) for m in
                re.finditer(r"^(tern_schema_registry_[a-z_]+)(\{[^}]*\})? (\S+)$", text, re.M)}

    def dead_letters(self):
        return [d["value"] for d in consume(self.brokers, "tern-dead-letter", "dead_letter.avsc")]

    def test_registry_flow(self):
        self.work = workdir("registry")
        self.state = os.path.join(self.work, "state")
        broker, self.brokers = start_broker(self.work, ["-X", "topics.input_partitions=1"])
        reg = Registry({21: EVOLVED, 22: PLAIN, 23: INCOMPATIBLE})
        try:
            self.produce([
                framed(21, EVOLVED, ev("e1", "u1", "i1", "VIEW", 1000, coupon="SALE", price=2.5)),
                framed(21, EVOLVED, ev("e2", "u1", "i2", "CART", 2000, coupon=None, price=9.75)),
                framed(22, PLAIN, ev("e3", "u2", "i1", "PURCHASE", T0 + 3000, quantity=2)),
                framed(23, INCOMPATIBLE, ev("e4", "u2", None, "VIEW", "soon")),
                framed(24, PLAIN, ev("e5", "u2", "i3", "VIEW", T0 + 5000, quantity=None)),
                framed(21, EVOLVED, ev("e6", "u4", "i2", "VIEW", 6000, price=0.5)),
            ], "phase1")
            url = ["-X", "input.schema_registry_url=" + reg.url]
            # 21, 22, 23 from the registry (23 then refused by the
            # decoder), 24 not there: four requests.
            self.run_until(6, "run1.log", url, lookups(requests=4, registry=3, failed=1))
        finally:
            reg.close()
        # one request per id, whatever the number of records
        assert reg.requests == {21: 1, 22: 1, 23: 1, 24: 1}, reg.requests

        u1 = inspect(self.state, "user", "u1")
        assert u1["events"]["VIEW"] == 1 and u1["events"]["CART"] == 1, u1  # enum by symbol
        assert [w["item_id"] for w in u1["window"]] == ["i2", "i1"], u1["window"]
        assert u1["first_ts_ms"] == 1000 and u1["last_ts_ms"] == 2000, u1  # int -> long
        u2 = inspect(self.state, "user", "u2")
        assert u2["events"]["PURCHASE"] == 1 and u2["events"]["VIEW"] == 0, u2
        u4 = inspect(self.state, "user", "u4")  # after the dead letters
        assert u4["events"]["VIEW"] == 1, u4
        assert os.path.exists(os.path.join(self.state, "schemas", "21.avsc"))

        dlq = self.dead_letters()
        by_reason = {d["reason"]: d for d in dlq}
        assert sorted(by_reason) == ["incompatible_schema", "unknown_schema"], dlq
        bad = by_reason["incompatible_schema"]
        assert "schema id 23" in bad["error"] and "ts_ms" in bad["error"], bad
        assert "not retriable" in bad["error"] and bad["source_offset"] == 3, bad
        unknown = by_reason["unknown_schema"]
        assert "404" in unknown["error"] and "not retriable" in unknown["error"], unknown
        assert unknown["source_offset"] == 4, unknown

        # Registry gone: restart. Id 21 from the disk cache, id 25 from
        # input.schema_dir, id 26 nowhere (retriable), and the records
        # after it still processed.
        local = os.path.join(self.work, "schemas")
        os.makedirs(local)
        with open(os.path.join(local, "25.avsc"), "w") as f:
            json.dump(PLAIN, f)
        self.produce([
            framed(21, EVOLVED, ev("e7", "u3", "i3", "VIEW", 7000, price=1.0)),
            framed(25, PLAIN, ev("e8", "u3", "i4", "CART", 8000, quantity=1)),
            framed(26, PLAIN, ev("e9", "u3", "i5", "VIEW", 9000, quantity=None)),
            framed(21, EVOLVED, ev("e10", "u3", "i6", "VIEW", 10000, price=1.0)),
        ], "phase2")
        # Two requests attempted (25, 26): the cache answers 21 first.
        log = self.run_until(10, "run2.log", ["-X", "input.schema_registry_url=" + reg.url,
                                              "-X", "input.schema_dir=" + local],
                             lookups(requests=2, cache=1, schema_dir=1, failed=1))
        assert "schema id 21 added (from cache)" in log, log[-2000:]
        assert "schema id 25 added (from schema_dir)" in log, log[-2000:]
        u3 = inspect(self.state, "user", "u3")
        assert u3["events"]["VIEW"] == 2 and u3["events"]["CART"] == 1, u3
        dlq = self.dead_letters()
        unavailable = [d for d in dlq if d["reason"] == "schema_unavailable"]
        assert len(dlq) == 3 and len(unavailable) == 1, dlq
        assert "schema id 26" in unavailable[0]["error"], unavailable
        assert "(retriable" in unavailable[0]["error"], unavailable
        stop(broker)


if __name__ == "__main__":
    RegistryE2E().main()
