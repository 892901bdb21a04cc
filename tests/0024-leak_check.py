"""0024-leak_check: a replay of the Taobao slice by the ASan+UBSan tern
binary reports no leak and no error.

TERN_TEST_LABEL: asan
(This test exists only in the sanitizer build, -DTERN_SANITIZE=ON, with
ctest label asan; tests/run.sh runs it there. ~45 s on 2 cores.)

The whole slice (96168 events) goes through `tern replay` with --emit,
so every stage runs: decode, features, both models, the sinks, the
state store, commit and a clean shutdown. LeakSanitizer checks the heap
at exit (detect_leaks=1), UBSan stops on the first report
(halt_on_error=1): either makes the exit non-zero and prints an
"ERROR: ...Sanitizer" or "runtime error:" line, which fails the test.

No LSan suppressions are needed: the known Avro-C leak (~13 KB per
opened container file, suppressed in test 0006) is on the Avro container
reader, which a taobao-csv replay never opens.
"""
import json
import os
import subprocess

from ternlib import TERN, Tests, data_dir, skip, workdir

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
           "SUMMARY: ")


def tern(args, timeout):
    env = dict(os.environ, **SANITIZER_ENV)
    return subprocess.run([TERN] + args, capture_output=True, text=True, timeout=timeout,
                          env=env)


class LeakCheck(Tests):
    def test_binary_is_instrumented(self):
        env = dict(os.environ, ASAN_OPTIONS="help=1")
        proc = subprocess.run([TERN, "--version"], capture_output=True, text=True, env=env,
                              timeout=60)
        assert "AddressSanitizer" in proc.stdout + proc.stderr, \
            "%s is not an ASan build (no ASan flag help printed)" % TERN

    def test_taobao_replay_no_leak(self):
        data = data_dir()
        if not data:
            skip("../shared/data not found: the leak check replays the Taobao slice")
        path = os.path.join(data, "taobao_userbehavior_time_slice", "UserBehavior.csv")
        work = workdir("leak")
        proc = tern(["replay", "--input", path, "--format", "taobao-csv",
                     "--state-dir", os.path.join(work, "state"),
                     "--emit", os.path.join(work, "emit")], timeout=600)
        found = [line for line in proc.stderr.splitlines() if any(r in line for r in REPORTS)]
        assert proc.returncode == 0 and not found, \
            "exit %d, sanitizer reports:\n%s" % (proc.returncode, proc.stderr[-6000:])
        summary = json.loads(proc.stdout)
        assert summary["events_in"] == 96168 and summary["dead_lettered"] == 0, summary
        print("  replay under ASan+UBSan: %d events in %.1f s, no leak, no error"
              % (summary["events_in"], summary["seconds"]), flush=True)


if __name__ == "__main__":
    LeakCheck().main()
