#!/usr/bin/env bash
# End-to-end test of the charts and the operator on a REAL Kubernetes cluster (the current
# kubectl context). NOT run by CI or `make test`: the project's machines have no cluster.
# Typically after deploy/quickstart/kind.sh, which leaves the values this script reuses.
#
#   1. installs (or upgrades) the operator chart and the mzchat chart at FROM_VERSION
#   2. waits for the Homeserver's Available condition and runs `helm test`
#   3. upgrades to TO_VERSION and checks that the migration Job of TO_VERSION completed before
#      any Deployment rolled a pod of TO_VERSION; waits for Available again; `helm test` again
#
# Settings: VALUES (the mzchat values; default: the quickstart's), NAMESPACE (chat), RELEASE
# (chat), IMAGE, FROM_TAG (dev), TO_TAG (dev-e2e; on kind, retagged from FROM_TAG and loaded
# when KIND_CLUSTER is set), FROM_VERSION (0.1.0), TO_VERSION (0.1.0-e2e), TIMEOUT (10m).
# Needs kubectl, helm and jq.
set -euo pipefail
cd "$(dirname "$0")/../.."

VALUES=${VALUES:-$HOME/.cache/mzchat/quickstart/values.yaml}
NAMESPACE=${NAMESPACE:-chat}
RELEASE=${RELEASE:-chat}
IMAGE=${IMAGE:-ghcr.io/mzchat/mzchatd}
FROM_TAG=${FROM_TAG:-dev}
TO_TAG=${TO_TAG:-dev-e2e}
FROM_VERSION=${FROM_VERSION:-0.1.0}
TO_VERSION=${TO_VERSION:-0.1.0-e2e}
TIMEOUT=${TIMEOUT:-10m}

for tool in kubectl helm jq; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is required" >&2; exit 1; }
done
[ -f "$VALUES" ] || { echo "e2e: no values file $VALUES (run deploy/quickstart/kind.sh or set VALUES)" >&2; exit 1; }
kubectl version >/dev/null || { echo "e2e: no reachable cluster in the current context" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }
die() { echo "e2e: FAILED: $*" >&2; exit 1; }
# The Homeserver's name is the release name unless the values override it.
hs=$(helm template "$RELEASE" charts/mzchat -f "$VALUES" --show-only templates/homeserver.yaml |
  sed -n 's/^  name: //p' | head -n 1)

if [ -n "${KIND_CLUSTER:-}" ]; then
  step "images $IMAGE:$TO_TAG (retagged $FROM_TAG) into kind $KIND_CLUSTER"
  for suffix in "" -debug; do docker tag "$IMAGE:$FROM_TAG$suffix" "$IMAGE:$TO_TAG$suffix"; done
  kind load docker-image --name "$KIND_CLUSTER" "$IMAGE:$TO_TAG" "$IMAGE:$TO_TAG-debug"
fi

install() { # VERSION TAG
  helm upgrade --install "$RELEASE" charts/mzchat -n "$NAMESPACE" --create-namespace -f "$VALUES" \
    --set version="$1" --set image.repository="$IMAGE" --set image.tag="$2"
}
available() {
  # First the operator must have seen the current spec: an Available from before counts not.
  local generation
  generation=$(kubectl -n "$NAMESPACE" get "hs/$hs" -o jsonpath='{.metadata.generation}')
  kubectl -n "$NAMESPACE" wait "hs/$hs" --for=jsonpath='{.status.observedGeneration}'="$generation" \
    --timeout="$TIMEOUT" || die "the operator did not observe generation $generation"
  kubectl -n "$NAMESPACE" wait "hs/$hs" --for=condition=Available --timeout="$TIMEOUT" ||
    { kubectl -n "$NAMESPACE" describe "hs/$hs"; die "homeserver $hs did not become Available"; }
  for deployment in $(kubectl -n "$NAMESPACE" get deployments -o name); do
    kubectl -n "$NAMESPACE" rollout status "$deployment" --timeout="$TIMEOUT" || die "$deployment did not roll out"
  done
}

step "operator"
helm upgrade --install mzchat-operator charts/mzchat-operator -n mzchat-system --create-namespace \
  --set image.repository="$IMAGE" --set image.tag="$FROM_TAG" --wait --timeout "$TIMEOUT"

step "homeserver $hs at $FROM_VERSION"
install "$FROM_VERSION" "$FROM_TAG"
available
helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout "$TIMEOUT" || die "helm test at $FROM_VERSION"

step "upgrade to $TO_VERSION"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
install "$TO_VERSION" "$TO_TAG"
available

# The migration Job of the new version: a Job whose pod runs `migrate` with the new image.
jobs=$(kubectl -n "$NAMESPACE" get jobs -o json)
migrated=$(jq -r --arg image "$IMAGE:$TO_TAG" '[.items[]
    | select(.spec.template.spec.containers[] | .image == $image and ((.args // []) + (.command // []) | index("migrate")))
    | .status.completionTime // empty] | sort | last // empty' <<<"$jobs")
[ -n "$migrated" ] || die "no completed migration Job with image $IMAGE:$TO_TAG"
# The first pod template of the new version each Deployment rolled out (its ReplicaSet).
rolled=$(kubectl -n "$NAMESPACE" get replicasets -o json | jq -r --arg image "$IMAGE:$TO_TAG" --arg since "$started" '
    [.items[] | select(.metadata.creationTimestamp >= $since)
     | select(any(.spec.template.spec.containers[]; .image == $image))
     | .metadata.creationTimestamp] | sort | first // empty')
[ -n "$rolled" ] || die "no Deployment rolled out $IMAGE:$TO_TAG"
# RFC 3339 UTC timestamps compare as strings.
[[ "$migrated" < "$rolled" || "$migrated" == "$rolled" ]] ||
  die "Deployments rolled at $rolled, before the migration Job completed at $migrated"
echo "migration Job completed at $migrated; first new ReplicaSet at $rolled"

helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout "$TIMEOUT" || die "helm test at $TO_VERSION"

step "e2e passed"
echo "Leave it running, or remove it: helm -n $NAMESPACE uninstall $RELEASE"
