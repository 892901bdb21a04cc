"""0035-bench: `tern bench` runs end to end and reports what issue 7 asks.

A small run (20k events, 2 s of latency measurement) must print one JSON
object with every figure, each sane: rates > 0, every record consumed by
every loop, latency percentiles ordered, both decoders timed. A short soak
prints RSS samples and a growth figure. No timing is asserted: the machine
is shared, only the shape and sanity of the figures are checked.
"""
import json
import re

from ternlib import Tests, run, start_broker, stop, workdir

KEYS = ["events", "raw_consume_eps", "passthrough_eps", "pipeline_eps", "ratio",
        "p50_ms", "p99_ms", "p999_ms", "peak_rss_mb", "stage_us", "cpu_us_per_event",
        "decode", "latency_measured"]
STAGES = ["decode", "state", "models", "recs", "produce", "flush", "rocksdb_write"]


class Bench(Tests):
    def test_bench_json(self):
        out = run(["bench", "--events", "20000", "--latency-seconds", "2", "--json"],
                  timeout=600)
        lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, out.stdout
        b = json.loads(lines[0])
        for k in KEYS:
            assert k in b, "missing %s in %s" % (k, lines[0])
        assert b["events"] == 20000, b
        assert b["raw_consumed"] == 20000 and b["pipeline_consumed"] == 20000, b
        for k in ("raw_consume_eps", "passthrough_eps", "pipeline_eps", "ratio"):
            assert b[k] > 0, (k, b)
        for k in STAGES:
            assert b["stage_us"][k] >= 0, (k, b)
        assert b["stage_us"]["decode"] > 0 and b["stage_us"]["state"] > 0, b
        assert b["cpu_us_per_event"]["loop_thread"] > 0, b
        assert b["latency_measured"] > 0, b
        assert 0 < b["p50_ms"] <= b["p99_ms"] <= b["p999_ms"] <= b["max_ms"], b
        legs = b["latency_legs_ms"]
        assert 0 < legs["in_p50"] <= legs["in_p99"], legs
        assert 0 < legs["out_p50"] <= legs["out_p99"], legs
        assert legs["commits"] > 0 and legs["commit_mean"] <= legs["commit_max"], legs
        d = b["decode"]
        assert d["records"] == 20000 and d["tern_ns"] > 0 and d["avro_c_generic_ns"] > 0, d
        assert b["peak_rss_mb"] > 0, b

    def test_soak_json(self):
        out = run(["bench", "--seconds", "3", "--sample-seconds", "1", "--rate", "2000",
                   "--json"], timeout=300)
        s = json.loads(out.stdout.strip().splitlines()[-1])
        for k in ("soak_seconds", "rate_eps", "rss_growth_pct", "rss_growth_line_pct",
                  "samples", "p99_ms", "latency_legs_ms"):
            assert k in s, (k, s)
        assert len(s["samples"]) >= 3 and all(m > 0 for _, m in s["samples"]), s
        # the line's growth is a least-squares fit through the samples (all of
        # them: the run is shorter than the warm-up), from its value at the first
        ts = [t for t, _ in s["samples"]]
        ys = [m for _, m in s["samples"]]
        n, mt, my = len(ts), sum(ts) / len(ts), sum(ys) / len(ys)
        slope = (sum((t - mt) * (y - my) for t, y in zip(ts, ys)) /
                 sum((t - mt) ** 2 for t in ts))
        base = my + slope * (ts[0] - mt)
        line = slope * (ts[-1] - ts[0]) / base * 100
        assert s["rss_growth_line_samples"] == n, s
        assert abs(line - s["rss_growth_line_pct"]) < 0.2 + 0.02 * abs(line), (line, s)
        assert s["events"] > 0 and s["rate_eps"] > 0, s

    def test_soak_own_broker(self):
        # --brokers: the broker is another process (tern's RSS alone); each
        # line says what holds the memory.
        topics = []
        for t in ("bench-in", "bench-out", "bench-latency-in",
                  "bench-latency-recommendations"):
            topics += ["--topic", t + ":4"]
        proc, addr = start_broker(workdir("0035-own-broker"), topics)
        try:
            out = run(["bench", "--seconds", "3", "--sample-seconds", "1", "--rate",
                       "1000", "--brokers", addr], timeout=300)
            bad = run(["bench", "--seconds", "1", "--brokers", addr, "--partitions",
                       "3"], check=False, timeout=120)
        finally:
            stop(proc)
        lines = [ln for ln in out.stderr.splitlines() if ln.startswith("soak: t=")]
        assert len(lines) >= 3, out.stderr
        for k in ("anon", "memtables", "block-cache", "table-readers", "pairs",
                  "churn cached", "timers", "lag", "L0 files", "sorted runs",
                  "compactions", "compaction owed", "delayed writes"):
            assert k in lines[-1], (k, lines[-1])
        # malloc's view, read on the sampling thread: in use <= held, > 0
        heap = re.search(r"heap in use ([0-9.]+) held ([0-9.]+) MiB", lines[-1])
        assert heap and 0 < float(heap[1]) <= float(heap[2]), lines[-1]
        # ... by arena: each arena's free part of what it holds
        arenas = re.search(r"arenas: main ([0-9.]+) free ([0-9.]+), "
                           r"others ([0-9.]+) free ([0-9.]+) MiB", lines[-1])
        assert arenas, lines[-1]
        main_held, main_free, other_held, other_free = map(float, arenas.groups())
        assert 0 < main_free <= main_held and other_free <= other_held, lines[-1]
        # the pools of the loop's long-lived objects, outside the arenas
        pools = re.search(r"pools ([0-9.]+) MiB", lines[-1])
        assert pools and float(pools[1]) > 0, lines[-1]
        assert "growth" in out.stdout, out.stdout
        # topics with other partition counts: refused, with the fix named
        assert bad.returncode != 0 and "tern broker --topic" in bad.stderr, bad.stderr

    def test_bad_arguments(self):
        for args in (["--events", "0"], ["--rate", "x"], ["--sample-seconds", "0"]):
            proc = run(["bench"] + args, check=False)
            assert proc.returncode == 2, (args, proc.returncode, proc.stderr)


if __name__ == "__main__":
    Bench().main()
