#!/usr/bin/env bash
# Checks deploy/ offline: the Prometheus rules (promtool check + unit tests of every alert,
# annotations and runbook sections), the Grafana dashboard's queries (parsed by promtool), and
# the Kubernetes manifests (`kubectl kustomize deploy/`, validated against the Kubernetes
# schemas with kubernetes-validate; the KEDA objects against deploy/schemas/keda/). Installs
# promtool and kubernetes-validate when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-prometheus.sh
K8S_VERSION=1.32.0          # Kubernetes schema version validated against
KUBERNETES_VALIDATE=1.32.0  # PyPI kubernetes-validate, pinned
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== promtool check rules"
promtool check rules deploy/prometheus/rules/*.yaml
echo "== promtool test rules"
promtool test rules deploy/prometheus/tests/alerts_test.yaml

echo "== alerts: annotations, runbook sections, unit tests"
python3 - "$work/panels.yaml" <<'PY'
import json, re, sys, yaml
alerts = [r for g in yaml.safe_load(open("deploy/prometheus/rules/alerts.yaml"))["groups"]
          for r in g["rules"] if "alert" in r]
runbook = open("deploy/RUNBOOK.md").read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
tests = yaml.safe_load(open("deploy/prometheus/tests/alerts_test.yaml"))["tests"]
fired = {t["alertname"] for g in tests for t in g["alert_rule_test"] if t["exp_alerts"]}
silent = {t["alertname"] for g in tests for t in g["alert_rule_test"] if not t["exp_alerts"]}
problems = []
for a in alerts:
    name, ann = a["alert"], a.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        if not ann.get(key):
            problems.append(f"{name}: no {key}")
    anchor = ann.get("runbook_url", "").partition("#")[2]
    if anchor not in anchors:
        problems.append(f"{name}: runbook_url #{anchor} is not a section of deploy/RUNBOOK.md")
    if name not in fired:
        problems.append(f"{name}: no unit test where it fires")
    if name not in silent:
        problems.append(f"{name}: no unit test where it stays silent")
# Every dashboard query, as a recording rule, so that promtool parses it.
dash = json.load(open("deploy/grafana/copydesk.json"))
rules = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            expr = (t["expr"].replace("$__rate_interval", "1m")
                    .replace("$queue", ".*").replace("$role", ".*"))
            rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": expr})
walk(dash["panels"])
if not dash.get("uid"):
    problems.append("copydesk.json: no uid")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
if problems:
    sys.exit("\n".join(problems))
print(f"{len(alerts)} alerts: summary, description, runbook section, firing and silent tests")
print(f"{len(rules)} dashboard queries")
PY
echo "== dashboard queries parse"
promtool check rules "$work/panels.yaml"

echo "== kubectl kustomize deploy/"
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl not found: installing Debian's kubernetes-client" >&2
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubernetes-client >/dev/null \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubernetes-client >/dev/null; }
fi
kubectl kustomize deploy/ > "$work/deploy.yaml"
echo "$(grep -c '^kind:' "$work/deploy.yaml") objects"

echo "== Kubernetes schemas ($K8S_VERSION)"
if ! python3 -m pip show kubernetes-validate 2>/dev/null | grep -q "^Version: $KUBERNETES_VALIDATE$"; then
  python3 -m pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE"
fi
# Built-in kinds against the Kubernetes schemas; the KEDA objects against KEDA's CRD fields
# (deploy/schemas/keda/, JSON Schema; jsonschema comes with kubernetes-validate), plus the
# cross-references an apply would not catch: each ScaledObject scales a workload this deploy
# defines, uses a TriggerAuthentication it defines, and watches the stream of a real queue.
python3 - "$work/deploy.yaml" "$work/builtin.yaml" deploy/k8s/keda-scaledobjects.yaml <<'PY'
import json, re, sys, yaml
from jsonschema import Draft202012Validator
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keda = [d for d in yaml.safe_load_all(open(sys.argv[3])) if d]
builtin = [d for d in docs if not d.get("apiVersion", "").startswith("keda.sh/")]
yaml.safe_dump_all(builtin, open(sys.argv[2], "w"))
schemas = {
    kind: Draft202012Validator(json.load(open(f"deploy/schemas/keda/{file}")))
    for kind, file in [("ScaledObject", "scaledobject.schema.json"),
                       ("TriggerAuthentication", "triggerauthentication.schema.json")]
}
scaler = json.load(open("deploy/schemas/keda/redis-streams.metadata.json"))
queues = set(re.findall(r'const QUEUE: &\'static str = "([a-z_]+)";', open("shared/src/jobs.rs").read()))
workloads = {d["metadata"]["name"] for d in builtin if d.get("kind") in ("Deployment", "StatefulSet")}

def check(objs):
    problems = []
    auths = {d.get("metadata", {}).get("name") for d in objs if d.get("kind") == "TriggerAuthentication"}
    for d in objs:
        name = d.get("metadata", {}).get("name", "?")
        schema = schemas.get(d.get("kind"))
        if schema is None:
            problems.append(f"{name}: kind {d.get('kind')!r} is not a KEDA kind this deploy uses")
            continue
        for e in sorted(schema.iter_errors(d), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in e.path) or "(top)"
            problems.append(f"{d['kind']} {name}: {path}: {e.message}")
        if d.get("kind") != "ScaledObject" or not isinstance(d.get("spec"), dict):
            continue
        spec = d["spec"]
        target = spec.get("scaleTargetRef", {}).get("name")
        if target not in workloads:
            problems.append(f"ScaledObject {name}: scaleTargetRef {target!r} is no Deployment/StatefulSet in deploy/")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append(f"ScaledObject {name}: minReplicaCount > maxReplicaCount")
        for i, t in enumerate(spec.get("triggers") or []):
            ref = (t.get("authenticationRef") or {}).get("name")
            if ref is not None and ref not in auths:
                problems.append(f"ScaledObject {name}: triggers[{i}].authenticationRef {ref!r} is not defined")
            if t.get("type") != "redis-streams":
                continue
            meta = t.get("metadata") or {}
            unknown = sorted(set(meta) - set(scaler["keys"]))
            if unknown:
                problems.append(f"ScaledObject {name}: triggers[{i}]: unknown redis-streams metadata {unknown}")
            stream = meta.get("stream", "")
            if stream.partition(":")[2] not in queues:
                problems.append(f"ScaledObject {name}: triggers[{i}]: stream {stream!r} is not copydesk:<queue> of a known queue")
    return problems

# The checker itself must catch what it is for: a typo'd field and a dangling reference.
bad = json.loads(json.dumps([d for d in keda if d.get("kind") == "ScaledObject"][0]))
bad["spec"]["minReplicas"] = bad["spec"].pop("minReplicaCount", 1)
bad["spec"]["scaleTargetRef"]["name"] = "copydesk-nonexistent"
if len(check([bad] + [d for d in keda if d.get("kind") == "TriggerAuthentication"])) < 2:
    sys.exit("check-deploy self-test: the KEDA checker did not catch a typo'd field and a dangling target")

problems = check(keda)
if problems:
    sys.exit("\n".join(problems))
kinds = [d["kind"] for d in keda]
print(f"{len(builtin)} built-in objects to validate; {kinds.count('ScaledObject')} ScaledObjects and "
      f"{kinds.count('TriggerAuthentication')} TriggerAuthentication valid against KEDA's CRD fields")
PY
kubernetes-validate --strict -k "$K8S_VERSION" "$work/builtin.yaml"
echo "deploy checks passed"
