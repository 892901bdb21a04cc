"""0031-deploy: the deploy kit (deploy/) is well formed and consistent.

With what this machine has, offline: every YAML (multi-document) and JSON
file parses, `yamllint -d relaxed` finds no error, `docker-compose config`
accepts the compose file, `systemd-analyze verify` accepts the unit, the
tern configs of compose and Kubernetes load with the real binary (`tern
config --check`, every key known), the dashboard and alert rules use only
metrics and labels of the binary's table (`tern config --metrics`), and the Kubernetes objects, the compose services, the Dockerfile and
the unit agree with those configs (state.dir, http.listen port, probes,
shutdown timeout). A checker that is not installed is skipped with a
message; everything else still runs.
"""
import json
import os
import re
import shutil
import subprocess

import yaml

from ternlib import SRC, TERN, Tests, run, workdir

DEPLOY = os.path.join(SRC, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
COMPOSE_CONF = os.path.join(DEPLOY, "tern.compose.yaml")
UNIT = os.path.join(DEPLOY, "tern.service")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DASHBOARD = os.path.join(DEPLOY, "grafana", "tern-dashboard.json")
ALERTS = os.path.join(DEPLOY, "tern-alerts.yml")
PROMETHEUS = os.path.join(DEPLOY, "prometheus.yml")

# The metric names and their label names come from the built binary's
# table (`tern config --metrics`, the one /metrics is formatted from):
# metric_table() fills METRICS and HISTOGRAMS.
METRICS = {}
HISTOGRAMS = set()
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
# What the dashboard must show (the list, then control and registry).
DASHBOARD_NEEDS = [
    "tern_events_in_total", "tern_dead_lettered_total", "tern_outputs_total",
    "tern_batch_commit_seconds_bucket", "tern_consumer_lag", "tern_model_logloss",
    "tern_model_auc", "tern_drift_events_total", "tern_churn_alerts_total",
    "tern_rocksdb_size_bytes", "tern_config_version", "tern_ready",
    "tern_control_records_total", "tern_control_last_applied_offset",
    "tern_schema_registry_lookups_total", "tern_schema_registry_requests_total",
]

def deploy_files(*exts):
    out = []
    for root, _dirs, files in os.walk(DEPLOY):
        for name in sorted(files):
            if name.endswith(exts):
                out.append(os.path.join(root, name))
    return sorted(out)


def rel(path):
    return os.path.relpath(path, SRC)


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def metric_table():
    """{metric: label names} and the histograms, from `tern config --metrics`.
    A labels cell lists label names, each with its values in parentheses
    when they are a fixed set: "type (view, click)", "topic, partition"."""
    metrics, histograms = {}, set()
    row = re.compile(r"^\| `(tern_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", re.M)
    for name, kind, labels in row.findall(run(["config", "--metrics"]).stdout):
        labels = re.sub(r"\([^)]*\)", "", labels.strip())
        names = {x.strip() for x in labels.split(",")} - {"", "-"}
        for label in names:
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", label), \
                "%s: unreadable label %r in `tern config --metrics`" % (name, label)
        metrics[name] = names
        if kind == "histogram":
            histograms.add(name)
            metrics[name] = names | {"le"}
    assert len(metrics) >= len(DASHBOARD_NEEDS), metrics
    return metrics, histograms


def check_tern_config(text, name, work):
    """Load a tern YAML with the binary (every key must be known); returns
    the effective config."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    proc = run(["config", "--check", "-c", path], check=False)
    assert proc.returncode == 0, "%s refused:\n%s" % (name, proc.stderr)
    return yaml.safe_load(run(["config", "--print", "-c", path]).stdout)


def listen_port(conf):
    listen = conf.get("http", {}).get("listen", "")
    assert listen, "http.listen is empty: no /metrics, /healthz, /readyz"
    host, _, port = listen.rpartition(":")
    assert host in ("0.0.0.0", "[::]", "::"), \
        "http.listen %s: bind every interface in a container" % listen
    return int(port)


def metric_names(expr):
    return re.findall(r"\btern_[a-z0-9_]+\b", expr)


def base_metric(name):
    for hist in HISTOGRAMS:
        if name in (hist + "_bucket", hist + "_sum", hist + "_count"):
            return hist
    return name


def check_expr(expr, where, labels_of=None):
    """Every tern metric in expr is agreed; every grouping label exists
    (on those metrics, or on labels_of's for an alert's annotations)."""
    names = metric_names(expr) + metric_names(labels_of or "")
    for name in names:
        base = base_metric(name)
        assert base in METRICS, "%s: unknown metric %s in %r" % (where, name, expr)
        if base in HISTOGRAMS:
            assert name != base, "%s: histogram %s used without _bucket/_sum/_count" % (where, name)
    labels = set()
    for name in names:
        labels |= METRICS[base_metric(name)]
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for label in (x.strip() for x in group.split(",")):
            if label:
                assert label in labels | TARGET_LABELS, \
                    "%s: label %r is not on %s" % (where, label, ", ".join(sorted(set(names))))
    for label in re.findall(r"\{\{\s*\$labels\.([a-z_]+)\s*\}\}", expr):
        assert label in labels | TARGET_LABELS, "%s: $labels.%s" % (where, label)
    return names


def dockerfile_stages(text):
    """[(base image, stage name, [(instruction, args)])] of a Dockerfile."""
    stages = []
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append((m.group(1), m.group(2), []))
        else:
            assert stages, "Dockerfile: %s before FROM" % instr
            stages[-1][2].append((instr, args.strip()))
    return stages


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text).strip())
    assert m, "unreadable duration %r" % text
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


class DeployTests(Tests):
    def __init__(self):
        self.work = workdir("deploy")
        metrics, histograms = metric_table()
        METRICS.update(metrics)
        HISTOGRAMS.update(histograms)

    def test_yaml_and_json_parse(self):
        files = deploy_files(".yml", ".yaml")
        assert len(files) >= 8, files
        for path in files:
            try:
                docs = load_yaml_docs(path)
            except yaml.YAMLError as e:
                raise AssertionError("%s: %s" % (rel(path), e))
            assert docs, "%s: empty" % rel(path)
        for path in deploy_files(".json"):
            with open(path) as f:
                try:
                    json.load(f)
                except ValueError as e:
                    raise AssertionError("%s: %s" % (rel(path), e))

    def test_yamllint(self):
        if not shutil.which("yamllint"):
            print("  skipped: yamllint not installed (deploy/install.sh installs it)")
            return
        files = deploy_files(".yml", ".yaml")
        proc = subprocess.run(["yamllint", "-f", "parsable", "-d", "relaxed"] + files,
                              capture_output=True, text=True)
        errors = [ln for ln in proc.stdout.splitlines() if "[error]" in ln]
        assert proc.returncode == 0 and not errors, "\n".join(errors) or proc.stderr

    def test_compose_config(self):
        exe = shutil.which("docker-compose")
        if not exe:
            print("  skipped: docker-compose not installed (deploy/install.sh installs it)")
            return
        env = dict(os.environ, DOCKER_HOST="unix:///nonexistent")  # stay offline
        proc = subprocess.run([exe, "-f", COMPOSE, "config", "-q"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def test_compose_services(self):
        doc = load_yaml_docs(COMPOSE)[0]
        services = doc["services"]
        for name in ("kafka", "schema-registry", "tern", "prometheus"):
            assert name in services, "compose: no %s service" % name
        kafka = services["kafka"]
        assert kafka["image"].startswith("apache/kafka:3.7"), kafka["image"]
        env = kafka["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"], "Kafka is not in KRaft mode"
        assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"], \
            "other containers cannot reach kafka:9092"
        assert services["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")
        conf = check_tern_config(open(COMPOSE_CONF).read(), "tern.compose.yaml", self.work)
        assert conf["kafka"]["brokers"] == "kafka:9092", conf["kafka"]["brokers"]
        port = listen_port(conf)
        tern = services["tern"]
        assert tern["build"]["dockerfile"] == "deploy/Dockerfile"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in tern["volumes"]}
        assert mounts.get("/etc/tern/tern.yaml") == "./tern.compose.yaml", tern["volumes"]
        assert conf["state"]["dir"] in mounts, \
            "state.dir %s is not a volume of the tern service" % conf["state"]["dir"]
        for dep, cond in tern["depends_on"].items():
            assert cond["condition"] in ("service_healthy", "service_completed_successfully"), dep
            assert dep in services, dep
            assert cond["condition"] != "service_healthy" or "healthcheck" in services[dep], \
                "%s has no healthcheck" % dep
        grace = duration_seconds(tern["stop_grace_period"])
        assert grace * 1000 > conf["batch"]["shutdown_timeout_ms"], \
            "stop_grace_period %ss <= batch.shutdown_timeout_ms" % grace
        # Every topic tern uses is created by the init service.
        init = " ".join(services["kafka-init"]["command"])
        for key in ("input", "recommendations", "dead_letter", "ctr_scores", "churn_scores",
                    "churn_alerts", "model_alerts", "control"):
            topic = conf["topics"].get(key)
            if topic:
                assert re.search(r"\bt %s\b" % re.escape(topic), init), "topic %s not created" % topic
        # Prometheus scrapes tern on that port.
        prom = load_yaml_docs(PROMETHEUS)[0]
        targets = [t for job in prom["scrape_configs"] if job["job_name"] == "tern"
                   for sc in job["static_configs"] for t in sc["targets"]]
        assert targets == ["tern:%d" % port], targets
        assert "/etc/prometheus/tern-alerts.yml" in prom["rule_files"]

    def test_metric_names(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        assert 36 <= dash["schemaVersion"] <= 41, dash["schemaVersion"]
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        used = set()
        for var in variables.values():
            if var["type"] == "query":
                check_expr(var["definition"], "variable %s" % var["name"])
        ids = set()
        for panel in dash["panels"]:
            assert panel["id"] not in ids, "duplicate panel id %d" % panel["id"]
            ids.add(panel["id"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                used |= set(check_expr(target["expr"], "dashboard %r" % panel["title"]))
        missing = [m for m in DASHBOARD_NEEDS if m not in used]
        assert not missing, "dashboard shows no %s" % ", ".join(missing)
        rules = load_yaml_docs(ALERTS)[0]
        alerts = 0
        for group in rules["groups"]:
            for rule in group["rules"]:
                alerts += 1
                check_expr(str(rule["expr"]), "alert %s" % rule["alert"])
                for text in rule.get("annotations", {}).values():
                    check_expr(text, "alert %s annotation" % rule["alert"], str(rule["expr"]))
                assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert alerts >= 4, alerts
        promtool = shutil.which("promtool")
        if promtool:
            proc = subprocess.run([promtool, "check", "rules", ALERTS],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        else:
            print("  promtool not installed: rule syntax checked by parsing only")

    def test_k8s(self):
        kust = load_yaml_docs(os.path.join(K8S, "kustomization.yaml"))[0]
        objects = []
        for name in kust["resources"]:
            for doc in load_yaml_docs(os.path.join(K8S, name)):
                objects.append(doc)
        listed = set(kust["resources"]) | {"kustomization.yaml"}
        on_disk = {n for n in os.listdir(K8S) if n.endswith((".yaml", ".yml"))}
        assert on_disk == listed, "not in kustomization.yaml: %s" % (on_disk - listed)
        by_kind = {}
        for obj in objects:
            for field in ("apiVersion", "kind", "metadata"):
                assert field in obj, "k8s object without %s: %s" % (field, obj)
            assert obj["metadata"].get("name"), obj
            assert "namespace" not in obj["metadata"], \
                "%s/%s names a namespace" % (obj["kind"], obj["metadata"]["name"])
            by_kind.setdefault(obj["kind"], []).append(obj)
        for kind in ("ConfigMap", "StatefulSet", "Service"):
            assert kind in by_kind, "no %s" % kind
        cm = by_kind["ConfigMap"][0]
        conf = check_tern_config(cm["data"]["tern.yaml"], "k8s-tern.yaml", self.work)
        port = listen_port(conf)

        sts = by_kind["StatefulSet"][0]
        spec = sts["spec"]
        assert spec["replicas"] == 1, "one instance: state is per instance"
        labels = spec["template"]["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            assert labels.get(k) == v, "selector does not match the pod labels"
        pod = spec["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] * 1000 > conf["batch"]["shutdown_timeout_ms"], \
            "terminationGracePeriodSeconds %ss <= batch.shutdown_timeout_ms %d" \
            % (pod["terminationGracePeriodSeconds"], conf["batch"]["shutdown_timeout_ms"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["args"] == ["run", "-c", "/etc/tern/tern.yaml"], container["args"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports.get("metrics") == port, "metrics port %s != http.listen %d" % (ports, port)

        def probe_port(probe):
            p = probe["httpGet"]["port"]
            return ports[p] if isinstance(p, str) else p

        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("startupProbe", "/healthz")):
            assert container[probe]["httpGet"]["path"] == path, probe
            assert probe_port(container[probe]) == port, probe
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        (claim,) = spec["volumeClaimTemplates"]
        assert mounts[claim["metadata"]["name"]] == conf["state"]["dir"], \
            "state volume at %s, state.dir %s" % (mounts[claim["metadata"]["name"]],
                                                  conf["state"]["dir"])
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[[n for n, p in mounts.items() if p == "/etc/tern"][0]]["configMap"]["name"] \
            == cm["metadata"]["name"]

        services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
        headless = services[spec["serviceName"]]
        assert headless["spec"]["clusterIP"] == "None", "serviceName must be headless"
        metrics = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
        assert metrics, "no metrics Service"
        for svc in metrics:
            ann = svc["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true"
            assert int(ann["prometheus.io/port"]) == port
            assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
            assert any(p["port"] == port for p in svc["spec"]["ports"])
        kubectl = shutil.which("kubectl")
        if kubectl:
            proc = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode == 0, proc.stderr
            assert len(load_yaml_docs_text(proc.stdout)) == len(objects)

    def test_systemd_unit(self):
        text = open(UNIT).read()
        keys = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith(("#", ";")):
                k, _, v = line.partition("=")
                keys.setdefault(k.strip(), []).append(v.strip())
        assert keys["ExecStart"] == ["/usr/local/bin/tern run -c /etc/tern/tern.yaml"]
        assert keys["User"] == ["tern"] and keys["StateDirectory"] == ["tern"]
        assert "/var/lib/tern" in keys["ReadWritePaths"][0].split()
        assert keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        assert keys["Restart"] == ["on-failure"]
        defaults = yaml.safe_load(run(["config", "--print"]).stdout)
        assert duration_seconds(keys["TimeoutStopSec"][0]) * 1000 > \
            defaults["batch"]["shutdown_timeout_ms"]
        for k in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "LimitNOFILE"):
            assert k in keys, k
        exe = shutil.which("systemd-analyze")
        if not exe:
            print("  skipped: systemd-analyze not installed (deploy/install.sh installs it)")
            return
        # verify needs ExecStart's binary to exist: the built one stands in.
        unit = os.path.join(self.work, "tern.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/local/bin/tern", os.path.abspath(TERN)))
        proc = subprocess.run([exe, "verify", unit], capture_output=True, text=True,
                              timeout=120)
        out = proc.stdout + proc.stderr
        # Unknown keys and bad values are only warnings (exit 0): any line
        # about our unit fails the check.
        ours = [ln for ln in out.splitlines() if "tern.service" in ln]
        assert proc.returncode == 0 and not ours, out

    def test_dockerfile(self):
        stages = dockerfile_stages(open(DOCKERFILE).read())
        assert len(stages) >= 2, "not multi-stage"
        for image, name, _ in stages:
            assert image == "debian:12", "FROM %s" % image
            assert name, "unnamed stage FROM %s" % image
        names = [s[1] for s in stages]
        _, _, final = stages[-1]
        instrs = [i for i, _ in final]
        copies = [a for i, a in final if i == "COPY" and a.startswith("--from=")]
        assert any(a.split()[0][len("--from="):] in names[:-1] for a in copies), \
            "the runtime stage copies nothing from the build stage"
        runs = " ".join(a for i, a in final if i == "RUN")
        assert not re.search(r"\S+-dev\b", runs), "-dev packages in the runtime stage"
        users = [a for i, a in final if i == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as root"
        assert "HEALTHCHECK" in instrs and "/healthz" in dict(final)["HEALTHCHECK"]
        assert "9464" in dict(final)["EXPOSE"].split()
        assert "/var/lib/tern" in dict(final)["VOLUME"]
        entry = json.loads(dict(final)["ENTRYPOINT"]) + json.loads(dict(final)["CMD"])
        assert entry == ["/usr/local/bin/tern", "run", "-c", "/etc/tern/tern.yaml"], entry
        # Runtime package names exist in this machine's Debian 12 archive.
        pkgs = re.search(r"apt-get install -y --no-install-recommends (.*?)(?:&&|$)", runs)
        assert pkgs, "runtime stage installs no packages"
        apt = shutil.which("apt-cache")
        if apt:
            names = pkgs.group(1).split()
            proc = subprocess.run([apt, "show", "--no-all-versions"] + names,
                                  capture_output=True, text=True)
            for pkg in names:
                assert "Package: %s\n" % pkg in proc.stdout, "no Debian package %s" % pkg
        ignore = open(os.path.join(SRC, ".dockerignore")).read().split()
        assert "build" in ignore and ".git" in ignore, ".dockerignore"


def load_yaml_docs_text(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


if __name__ == "__main__":
    DeployTests().main()
