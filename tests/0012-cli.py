"""0012-cli: the command-line contract of the tern binary.

Every command answers --help (exit 0, its main options named); bad
configs exit 2 with FILE:LINE:COLUMN: key: reason on stderr, for `run`,
`replay` and `inspect` alike; `-X` errors name the override; unknown
commands and formats exit 2; `tern config --example` is conf/tern.yaml;
secrets never reach the output; `tern demo` runs end to end and shows the
dead-letter path; `inspect` fails cleanly on an empty or unknown state.
"""
import json
import os
import subprocess
import time

from ternlib import SRC, TERN, Tests, run, workdir

# Each subcommand and options its --help must mention.
HELP = {
    "demo": ["--seconds", "--rate", "--seed", "-c", "-X", "--state-dir"],
    "run": ["-c", "-X", "--state-dir", "--emit"],
    "broker": ["-c", "-X", "--brokers", "--bootstrap-file"],
    "produce": ["-c", "-X", "--input", "--format", "--brokers"],
    "replay": ["-c", "-X", "--input", "--format", "--state-dir", "--emit"],
    "inspect": ["-c", "-X", "--state-dir", "user", "item", "items", "recs", "offsets", "--neighbors"],
    "bench": ["--events", "--partitions", "--json", "-c", "-X"],
    "config": ["--example", "--reference", "--print", "--check"],
}

FORMATS = ["taobao-csv", "movielens", "cdnow", "avazu-csv", "jsonl", "avro"]

# name -> (YAML text, expected message after "FILE:")
BAD_CONFIGS = {
    "unknown_key": ("features:\n  window_itemz: 3\n",
                    "2:3: features.window_itemz: unknown key"),
    "wrong_type": ("features:\n  window_items: abc\n",
                   '2:17: features.window_items: expected an integer (got "abc")'),
    "out_of_range": ("features:\n  window_items: 0\n",
                     "2:17: features.window_items: must be between 1 and 1000 (got 0)"),
    "out_of_range_deep": ("kafka:\n  brokers: x\n  session_timeout_ms: 10\n",
                          "3:23: kafka.session_timeout_ms: must be between 1000 and 3600000 (got 10)"),
    "bad_bool": ("state:\n  sync_writes: maybe\n",
                 '2:16: state.sync_writes: expected true or false (got "maybe")'),
    "bad_enum": ("log:\n  level: loud\n",
                 '2:10: log.level: expected one of error, warn, info, debug (got "loud")'),
    "duplicate": ("features:\n  window_items: 5\n  window_items: 6\n",
                  "3:3: features.window_items: duplicate key"),
    "not_a_section": ("features: 3\n",
                      "1:11: features: expected a mapping of keys"),
    "syntax": ("features:\n  window_items: [1\n  foo: : bar\n",
               "3:6: YAML syntax: did not find expected ',' or ']' while parsing a flow sequence"),
}


def tern(args, timeout=60, **kw):
    return subprocess.run([TERN] + args, capture_output=True, text=True, timeout=timeout, **kw)


def last_stderr_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def expect_exit(proc, code, what):
    assert proc.returncode == code, "%s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
        what, proc.returncode, code, proc.stdout[-2000:], proc.stderr[-2000:])


def assert_no_crash(proc, what):
    # A negative status is a signal (SIGSEGV, SIGABRT ...), 134/139 a shell-reported one.
    assert proc.returncode >= 0 and proc.returncode not in (134, 136, 139), \
        "%s crashed: status %d\nstderr: %s" % (what, proc.returncode, proc.stderr[-2000:])
    for word in ("Segmentation", "Assertion", "AddressSanitizer", "core dumped", "Aborted"):
        assert word not in proc.stderr, "%s: %r on stderr:\n%s" % (what, word, proc.stderr[-2000:])


class Cli(Tests):
    def __init__(self):
        self.work = workdir("cli")
        self.input = os.path.join(self.work, "one.jsonl")
        with open(self.input, "w") as f:
            f.write(json.dumps({"event_id": "e1", "user_id": "u1", "item_id": "i1",
                                "event_type": "VIEW", "ts_ms": 1700000000000}) + "\n")

    def test_help_and_version(self):
        top = tern(["--help"])
        expect_exit(top, 0, "tern --help")
        for cmd in HELP:
            assert cmd in top.stdout, "tern --help does not list %s:\n%s" % (cmd, top.stdout)
        ver = tern(["--version"])
        expect_exit(ver, 0, "tern --version")
        assert ver.stdout.startswith("tern "), ver.stdout
        for cmd, options in HELP.items():
            proc = tern([cmd, "--help"])
            expect_exit(proc, 0, "tern %s --help" % cmd)
            text = proc.stdout + proc.stderr
            assert "usage: tern " + cmd in text, "tern %s --help: no usage line:\n%s" % (cmd, text)
            missing = [o for o in options if o not in text]
            assert not missing, "tern %s --help does not mention %s" % (cmd, missing)
        for fmt in FORMATS:
            assert fmt in tern(["replay", "--help"]).stdout, "replay --help does not list " + fmt

    def test_bad_config_exit_2_with_location(self):
        state = os.path.join(self.work, "state-never-created")
        failures = []
        for name, (text, message) in BAD_CONFIGS.items():
            path = os.path.join(self.work, name + ".yaml")
            with open(path, "w") as f:
                f.write(text)
            commands = {
                "run": ["run", "-c", path, "--state-dir", state],
                "replay": ["replay", "-c", path, "--input", self.input, "--format", "jsonl",
                           "--state-dir", state],
                "inspect": ["inspect", "-c", path, "--state-dir", state, "offsets"],
                "config": ["config", "--check", "-c", path],
            }
            for cmd, args in commands.items():
                proc = tern(args)
                want = "tern %s: %s:%s" % (cmd, path, message)
                if proc.returncode != 2 or last_stderr_line(proc) != want:
                    failures.append("%s %s: exit %d, stderr %r, expected %r"
                                    % (cmd, name, proc.returncode, proc.stderr[-500:], want))
        assert not failures, "\n".join(failures)
        assert not os.path.exists(state), "a bad config still created the state directory"

    def test_bad_override(self):
        cases = {
            "features.window_itemz=3": "-X features.window_itemz=3: unknown key",
            "features.window_items=abc": '-X features.window_items=abc: expected an integer (got "abc")',
            "features.window_items=0": "-X features.window_items=0: must be between 1 and 1000 (got 0)",
            "features.window_items": "-X features.window_items: expected key.path=value",
        }
        failures = []
        for override, message in cases.items():
            for cmd, before, after in (("run", [], []), ("config", ["--check"], []),
                                       ("replay", [], ["--input", self.input, "--format", "jsonl"]),
                                       ("inspect", [], ["--state-dir", os.path.join(self.work, "nostate"),
                                                        "offsets"])):
                # inspect takes its options before WHAT (see its usage line).
                proc = tern([cmd] + before + ["-X", override] + after)
                want = "tern %s: %s" % (cmd, message)
                if proc.returncode != 2 or last_stderr_line(proc) != want:
                    failures.append("%s -X %s: exit %d, stderr %r, expected %r"
                                    % (cmd, override, proc.returncode, proc.stderr[-500:], want))
        assert not failures, "\n".join(failures)

    def test_usage_errors(self):
        proc = tern(["frobnicate"])
        expect_exit(proc, 2, "tern frobnicate")
        assert "unknown command 'frobnicate'" in proc.stderr, proc.stderr
        expect_exit(tern([]), 2, "tern without a command")

        proc = tern(["replay", "--input", self.input])
        expect_exit(proc, 2, "replay without --format")
        assert "--format" in proc.stderr, proc.stderr
        proc = tern(["replay", "--format", "jsonl"])
        expect_exit(proc, 2, "replay without --input")
        assert "--input" in proc.stderr, proc.stderr

        proc = tern(["replay", "--input", self.input, "--format", "xml"])
        expect_exit(proc, 2, "replay --format xml")
        assert "unknown format 'xml'" in proc.stderr, proc.stderr
        missing = [f for f in FORMATS if f not in proc.stderr]
        assert not missing, "unknown-format message does not list %s: %s" % (missing, proc.stderr)

        proc = tern(["replay", "--input", os.path.join(self.work, "absent.jsonl"), "--format", "jsonl",
                     "--state-dir", os.path.join(self.work, "absent-state")])
        assert proc.returncode != 0 and "absent.jsonl" in proc.stderr, (proc.returncode, proc.stderr)
        assert_no_crash(proc, "replay of a missing file")

    def test_config_example_check_print(self):
        example = subprocess.run([TERN, "config", "--example"], capture_output=True, timeout=60)
        expect_exit(example, 0, "config --example")
        with open(os.path.join(SRC, "conf", "tern.yaml"), "rb") as f:
            reference = f.read()
        assert example.stdout == reference, "tern config --example differs from conf/tern.yaml"

        proc = tern(["config", "--check", "-c", os.path.join(SRC, "conf", "tern.yaml")])
        expect_exit(proc, 0, "config --check -c conf/tern.yaml")

        path = os.path.join(self.work, "example.yaml")
        with open(path, "wb") as f:
            f.write(example.stdout)
        expect_exit(tern(["config", "--check", "-c", path]), 0, "config --check of --example output")

        ref = tern(["config", "--reference"])
        expect_exit(ref, 0, "config --reference")
        for key in ("features.window_items", "batch.max_events", "state.dir", "kafka.brokers"):
            assert key in ref.stdout, "config --reference does not list " + key

        proc = tern(["config", "--print", "-X", "kafka.properties.sasl.password=hunter2",
                     "-X", "kafka.properties.sasl.username=bob"])
        expect_exit(proc, 0, "config --print with a secret")
        assert "hunter2" not in proc.stdout + proc.stderr, "secret printed:\n" + proc.stdout
        assert "sasl.password" in proc.stdout and "bob" in proc.stdout, proc.stdout

        # Secrets given in a file, in all three property maps.
        path = os.path.join(self.work, "secrets.yaml")
        with open(path, "w") as f:
            f.write("kafka:\n  properties: {sasl.password: hunter2, ssl.key.password: hunter3}\n"
                    "  consumer: {sasl.password: hunter4}\n"
                    "  producer:\n    ssl.keystore.password: hunter5\n")
        proc = tern(["config", "--print", "-c", path])
        expect_exit(proc, 0, "config --print -c secrets.yaml")
        assert "hunter" not in proc.stdout + proc.stderr, "secret printed:\n" + proc.stdout

        # The effective config printed is itself a valid config.
        proc = tern(["config", "--print", "-X", "features.window_items=30"])
        expect_exit(proc, 0, "config --print")
        path = os.path.join(self.work, "printed.yaml")
        with open(path, "w") as f:
            f.write(proc.stdout)
        expect_exit(tern(["config", "--check", "-c", path]), 0, "config --check of --print output")

    def test_demo(self):
        t0 = time.time()
        proc = tern(["demo", "--seconds", "8", "--rate", "5000"], timeout=60)
        took = time.time() - t0
        expect_exit(proc, 0, "tern demo --seconds 8 --rate 5000")
        assert took < 60, "demo took %.1fs" % took
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        assert lines, "demo printed nothing on stdout"
        summary = json.loads(lines[-1])
        print("demo (%.1fs): %s" % (took, lines[-1]), flush=True)
        assert summary["records_in"] > 0, summary
        assert summary["dead_lettered"] >= 1, "no broken record dead-lettered: %s" % summary
        assert summary["outputs"]["recommendations"] > 0, summary
        assert summary["outputs"].get("tern-dead-letter", 0) == summary["dead_lettered"], summary
        progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("demo ")]
        assert len(progress) >= 3, "expected >= 3 progress lines on stderr, got:\n" + proc.stderr[-3000:]

    def test_inspect_failures(self):
        empty = os.path.join(self.work, "empty-state")
        os.makedirs(empty)
        for what in (["user", "x"], ["item", "x"], ["items"], ["offsets"]):
            proc = tern(["inspect", "--state-dir", empty] + what)
            assert_no_crash(proc, "inspect %s on an empty dir" % what)
            assert proc.returncode != 0, "inspect %s on an empty dir exited 0: %s" % (what, proc.stdout)
            assert proc.stderr.strip().startswith("tern inspect:"), proc.stderr
            assert proc.stdout == "", proc.stdout

        state = os.path.join(self.work, "state")
        out = run(["replay", "--input", self.input, "--format", "jsonl", "--state-dir", state])
        assert json.loads(out.stdout)["committed_offset"] == 1, out.stdout
        for what, message in ((["user", "NOPE"], 'user "NOPE" not found'),
                              (["item", "NOPE"], 'item "NOPE" not found')):
            proc = tern(["inspect", "--state-dir", state] + what)
            expect_exit(proc, 1, "inspect %s" % what)
            assert message in proc.stderr, proc.stderr
        proc = tern(["inspect", "--state-dir", state, "recs", "NOPE"])
        expect_exit(proc, 1, "inspect recs NOPE")
        for what in (["bogus"], ["user"], []):
            proc = tern(["inspect", "--state-dir", state] + what)
            expect_exit(proc, 2, "inspect %s" % what)
        user = json.loads(run(["inspect", "--state-dir", state, "user", "u1"]).stdout)
        assert user["events"]["VIEW"] == 1, user

    def test_inspect_does_not_create_state(self):
        # Reading state must not leave a directory behind where there was none.
        missing = os.path.join(self.work, "no-such-state")
        proc = tern(["inspect", "--state-dir", missing, "user", "x"])
        assert_no_crash(proc, "inspect on a missing dir")
        assert proc.returncode != 0 and proc.stderr.startswith("tern inspect:"), proc.stderr
        assert not os.path.exists(missing), "tern inspect created the missing state dir " + missing


if __name__ == "__main__":
    Cli().main()
