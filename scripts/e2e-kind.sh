#!/usr/bin/env bash
# End-to-end on a real (throwaway) Kubernetes cluster, for a machine with Docker:
#
#   1. creates a kind cluster (kind ≥ 0.24: its kindnet enforces NetworkPolicy);
#   2. installs CloudNativePG 1.30.0, KEDA 2.20.2, Knative Serving 1.23.0 + Kourier,
#      the versions whose CRDs baton deploy validates against (../shared/k8s-crds);
#   3. builds the image and loads it into the cluster;
#   4. runs `baton deploy` with scripts/e2e-kind.config.ts;
#   5. triggers RUNS (20) pr-review runs, deletes a function pod while they run (the
#      function pods also crash themselves now and then mid-call: fault points);
#   6. checks that every run succeeded, and that the dispatcher and the function
#      scale back to zero.
#
# Usage: scripts/e2e-kind.sh            (from the repository, after npm ci)
#   KEEP_CLUSTER=1   leave the cluster up afterwards (kubectl --context kind-baton-e2e)
#   CLUSTER=name     kind cluster name (default baton-e2e); RUNS=n (default 20)
# Exit 0 when everything held; non-zero with the reason otherwise.
set -euo pipefail

CLUSTER=${CLUSTER:-baton-e2e}
RUNS=${RUNS:-20}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
NS=baton-e2e
IMAGE=dev.local/baton:e2e
CONTEXT=kind-${CLUSTER}
LOCAL_PORT=${LOCAL_PORT:-18080}
CNPG_VERSION=1.30.0
KEDA_VERSION=2.20.2
KNATIVE_VERSION=1.23.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PF_PID=""

log() { printf '%s e2e-kind: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is required on PATH"; }
k() { kubectl --context "$CONTEXT" "$@"; }
# Prints the field `$1` (a dotted path) of the JSON on stdin.
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const p of process.argv[1].split("."))v=v?.[p];console.log(v??"")})' "$1"; }

cleanup() {
  local code=$?
  if [[ -n $PF_PID ]]; then kill "$PF_PID" 2>/dev/null || true; fi
  if [[ $code -ne 0 ]]; then
    log "state at failure:"
    k -n "$NS" get pods,scaledobjects,services.serving.knative.dev 2>&1 | sed 's/^/  /' >&2 || true
  fi
  if [[ $KEEP_CLUSTER == 1 ]]; then
    log "cluster kept: kubectl --context $CONTEXT -n $NS get pods"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$code"
}

# Waits (up to $2 seconds) until the command in $1 succeeds.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 3
  done
}

for tool in docker kind kubectl curl node npx; do need "$tool"; done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (docker info)"
[[ -d $ROOT/node_modules ]] || fail "run npm ci in $ROOT first"
trap cleanup EXIT

log "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --wait 180s

log "installing CloudNativePG $CNPG_VERSION"
k apply --server-side -f "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"
k -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=300s

log "installing KEDA $KEDA_VERSION"
k apply --server-side -f "https://github.com/kedacore/keda/releases/download/v${KEDA_VERSION}/keda-${KEDA_VERSION}.yaml"
k -n keda rollout status deployment/keda-operator --timeout=300s
k -n keda rollout status deployment/keda-operator-metrics-apiserver --timeout=300s

log "installing Knative Serving $KNATIVE_VERSION and Kourier"
k apply -f "https://github.com/knative/serving/releases/download/knative-v${KNATIVE_VERSION}/serving-crds.yaml"
k wait --for=condition=Established crd/services.serving.knative.dev --timeout=120s
k apply -f "https://github.com/knative/serving/releases/download/knative-v${KNATIVE_VERSION}/serving-core.yaml"
k apply -f "https://github.com/knative-extensions/net-kourier/releases/download/knative-v${KNATIVE_VERSION}/kourier.yaml"
k patch configmap/config-network -n knative-serving --type merge -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
k -n knative-serving wait --for=condition=Available deployment --all --timeout=300s
k -n kourier-system wait --for=condition=Available deployment --all --timeout=300s

log "building $IMAGE"
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "baton deploy"
(cd "$ROOT" && npx baton deploy --config scripts/e2e-kind.config.ts --context "$CONTEXT")

log "API key, port-forward"
KEY=$(k -n "$NS" exec deploy/baton-api -- node scripts/baton.ts keys create --tenant e2e | tail -n 1)
[[ -n $KEY ]] || fail "no API key"
k -n "$NS" port-forward svc/baton-api "$LOCAL_PORT:80" >/dev/null 2>&1 &
PF_PID=$!
API=http://127.0.0.1:$LOCAL_PORT
wait_for "the API through the port-forward" 60 curl -fsS "$API/readyz"

log "triggering $RUNS runs"
ids=()
for _ in $(seq "$RUNS"); do
  id=$(curl -fsS -X POST "$API/v1/functions/pr-review/runs" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
    --data-binary @"$ROOT/functions/pr-review/example.json" | json id)
  [[ -n $id ]] || fail "a run was not accepted"
  ids+=("$id")
done

log "deleting a function pod mid-step"
fn_pod() { k -n "$NS" get pods -l serving.knative.dev/service=pr-review --field-selector=status.phase=Running -o name | head -n 1; }
has_fn_pod() { [[ -n $(fn_pod) ]]; }
wait_for "a running pr-review pod" 300 has_fn_pod
victim=$(fn_pod)
k -n "$NS" delete "$victim" --grace-period=0 --force --wait=false
log "deleted $victim"

log "waiting for every run to finish"
deadline=$((SECONDS + 900))
for id in "${ids[@]}"; do
  while :; do
    status=$(curl -fsS "$API/v1/runs/$id" -H "authorization: Bearer $KEY" | json status || echo unknown)
    case $status in
      succeeded) break ;;
      failed | cancelled) fail "run $id $status: $(curl -fsS "$API/v1/runs/$id" -H "authorization: Bearer $KEY" | json error.message)" ;;
    esac
    ((SECONDS < deadline)) || fail "run $id still $status after 15 minutes"
    sleep 3
  done
done
log "all $RUNS runs succeeded"
restarts=$(k -n "$NS" get pods -l serving.knative.dev/service=pr-review -o jsonpath='{range .items[*]}{.status.containerStatuses[?(@.name=="function")].restartCount}{" "}{end}')
log "function container restarts (fault points firing mid-call): ${restarts:-none left}"

log "waiting for scale to zero"
dispatcher_at_zero() { [[ $(k -n "$NS" get deployment pr-review-dispatcher -o jsonpath='{.spec.replicas}') == 0 ]]; }
functions_at_zero() { [[ -z $(k -n "$NS" get pods -l serving.knative.dev/service=pr-review -o name) ]]; }
wait_for "the dispatcher to scale to zero" 600 dispatcher_at_zero
wait_for "the function pods to scale to zero" 600 functions_at_zero
log "ok: $RUNS runs succeeded through a pod kill, and pr-review is back at zero"
