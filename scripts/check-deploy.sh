#!/usr/bin/env bash
# Checks deploy/ offline: the Prometheus rules (promtool check + unit tests of every alert,
# annotations and runbook sections), the Grafana dashboard's queries (parsed by promtool), and
# the Kubernetes manifests (`kubectl kustomize deploy/`, validated against the Kubernetes
# schemas with kubernetes-validate). Installs promtool and kubernetes-validate when missing.
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
# Built-in kinds against the Kubernetes schemas; the KEDA ScaledObjects are checked below.
python3 - "$work/deploy.yaml" "$work/builtin.yaml" deploy/k8s/keda-scaledobjects.yaml <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keda = [d for d in yaml.safe_load_all(open(sys.argv[3])) if d]
builtin = [d for d in docs if not d.get("apiVersion", "").startswith("keda.sh/")]
yaml.safe_dump_all(builtin, open(sys.argv[2], "w"))
problems = []
for d in keda:
    name = d.get("metadata", {}).get("name", "?")
    spec = d.get("spec", {})
    if d.get("kind") == "TriggerAuthentication":
        refs = spec.get("secretTargetRef")
        if d.get("apiVersion") != "keda.sh/v1alpha1" or not isinstance(refs, list) or not all(
            isinstance(r, dict) and r.get("parameter") and r.get("name") and r.get("key") for r in refs
        ):
            problems.append(f"{name}: a TriggerAuthentication needs secretTargetRef entries with parameter, name, key")
        continue
    if d.get("apiVersion") != "keda.sh/v1alpha1" or d.get("kind") != "ScaledObject":
        problems.append(f"{name}: not a keda.sh/v1alpha1 ScaledObject")
    if not spec.get("scaleTargetRef", {}).get("name"):
        problems.append(f"{name}: spec.scaleTargetRef.name is required")
    for t in spec.get("triggers", []) or problems.append(f"{name}: spec.triggers is required") or []:
        if not t.get("type") or not isinstance(t.get("metadata"), dict):
            problems.append(f"{name}: every trigger needs type and metadata")
        elif any(not isinstance(v, str) for v in t["metadata"].values()):
            problems.append(f"{name}: trigger metadata values must be strings")
    for k in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        if k in spec and not isinstance(spec[k], int):
            problems.append(f"{name}: {k} must be an integer")
if problems:
    sys.exit("\n".join(problems))
print(f"{len(builtin)} built-in objects to validate, {len(keda)} ScaledObjects checked")
PY
kubernetes-validate --strict -k "$K8S_VERSION" "$work/builtin.yaml"
echo "deploy checks passed"
