"""0022-security: TLS and SASL settings reach librdkafka; secrets never
reach the output; kafka.require_tls refuses plaintext at start-up.

The secrets are distinctive strings; every stdout and stderr of every run
below (config --print, runs that fail to connect with SSL or SASL against
the plaintext `tern broker`, runs refused by require_tls, a rejected secret
property) is searched for them. Runs that fail to connect are given a few
seconds to log their error, then stopped with SIGTERM. About 20 s.
"""
import os
import signal
import time

from ternlib import Tests, run, start, start_broker, stop, workdir

SECRETS = ["s3cr3t-SASL-pw-91", "s3cr3t-KEY-pw-27", "s3cr3t-STORE-pw-55"]

SASL_SSL_YAML = """kafka:
  require_tls: true
  properties:
    security.protocol: SASL_SSL
    sasl.mechanisms: PLAIN
    sasl.username: tern-user
    sasl.password: %s
    ssl.key.password: %s
    ssl.keystore.password: %s
log:
  level: debug
""" % tuple(SECRETS)


def assert_no_secret(text, what):
    for s in SECRETS:
        assert s not in text, "secret %s leaked in %s:\n%s" % (s, what, text[-2000:])


class Security(Tests):
    def __init__(self):
        self.work = workdir("security")
        self.conf = os.path.join(self.work, "secure.yaml")
        with open(self.conf, "w") as f:
            f.write(SASL_SSL_YAML)
        self.broker, self.addr = start_broker(self.work)

    def run_for(self, name, args, seconds=6):
        """tern run for a few seconds; returns (exit status, whole output)."""
        log = os.path.join(self.work, name + ".log")
        proc = start(["run", "--state-dir", os.path.join(self.work, name),
                      "-X", "kafka.brokers=" + self.addr] + args, log)
        deadline = time.time() + seconds
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        status = proc.poll()
        if status is None:
            status = stop(proc, signal.SIGTERM, timeout=60)
        with open(log) as f:
            return status, f.read()

    def test_print_shows_tls_sasl_redacts_secrets(self):
        out = run(["config", "-c", self.conf, "--print"])
        text = out.stdout + out.stderr
        assert_no_secret(text, "config --print")
        for want in ['"security.protocol": "SASL_SSL"', '"sasl.mechanisms": "PLAIN"',
                     '"sasl.username": "tern-user"', "require_tls: true"]:
            assert want in text, "%r not in config --print:\n%s" % (want, text)
        assert text.count("[redacted]") >= 3, text

    def test_ssl_against_plaintext_fails_clearly(self):
        status, text = self.run_for("ssl", ["-c", self.conf])
        assert_no_secret(text, "a SASL_SSL run against a plaintext broker")
        assert "SSL" in text and ("handshake" in text.lower() or "ssl" in text.lower()), text[-3000:]
        print("  SASL_SSL vs plaintext: exit %s, first SSL line: %s" % (
            status, next(l for l in text.splitlines() if "SSL" in l)[:200]))

    def test_sasl_plaintext_fails_clearly(self):
        status, text = self.run_for("sasl", [
            "-X", "kafka.properties.security.protocol=SASL_PLAINTEXT",
            "-X", "kafka.properties.sasl.mechanisms=PLAIN",
            "-X", "kafka.properties.sasl.username=tern-user",
            "-X", "kafka.properties.sasl.password=" + SECRETS[0],
            "-X", "log.level=debug"])
        assert_no_secret(text, "a SASL_PLAINTEXT run")
        assert "SASL" in text, text[-3000:]
        print("  SASL_PLAINTEXT vs plaintext: exit %s, first SASL line: %s" % (
            status, next(l for l in text.splitlines() if "SASL" in l)[:200]))

    def test_bad_secret_property_is_redacted(self):
        # A secret property this librdkafka build rejects (OAuth needs
        # libcurl): the error must not quote the value.
        out = run(["run", "--state-dir", os.path.join(self.work, "bad"),
                   "-X", "kafka.brokers=" + self.addr,
                   "-X", "kafka.properties.ssl.key.password=" + SECRETS[1],
                   "-X", "kafka.properties.sasl.oauthbearer.client.secret=" + SECRETS[2]],
                  check=False, timeout=60)
        text = out.stdout + out.stderr
        assert out.returncode != 0, text
        assert_no_secret(text, "a rejected property")

    def test_require_tls_refuses_plaintext(self):
        for proto in [None, "plaintext", "SASL_PLAINTEXT"]:
            args = ["run", "--state-dir", os.path.join(self.work, "tls"),
                    "-X", "kafka.brokers=" + self.addr, "-X", "kafka.require_tls=true",
                    "-X", "kafka.properties.sasl.password=" + SECRETS[0]]
            if proto:
                args += ["-X", "kafka.properties.security.protocol=" + proto]
            out = run(args, check=False, timeout=60)
            text = out.stdout + out.stderr
            assert out.returncode == 2, "%s: exit %d: %s" % (proto, out.returncode, text)
            assert "kafka.require_tls" in text, text
            assert_no_secret(text, "a require_tls refusal")
        # The producer may not be plaintext when the consumer is TLS.
        out = run(["config", "--check", "-X", "kafka.require_tls=true",
                   "-X", "kafka.properties.security.protocol=ssl",
                   "-X", "kafka.producer.security.protocol=plaintext"], check=False)
        assert out.returncode == 2 and "producer" in out.stderr, out.stderr
        out = run(["config", "--check", "-X", "kafka.require_tls=true",
                   "-X", "kafka.properties.security.protocol=ssl"], check=False)
        assert out.returncode == 0, out.stderr
        print("  require_tls: refused unset, plaintext, sasl_plaintext with exit 2")

    def test_zz_stop_broker(self):
        stop(self.broker)


if __name__ == "__main__":
    Security().main()
