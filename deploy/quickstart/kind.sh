#!/usr/bin/env bash
# A throw-away mzchat homeserver on a local kind cluster, with everything it needs inside:
# ingress-nginx, NATS (JetStream), PostgreSQL, SeaweedFS (S3), the operator and the mzchat chart.
#
# NEEDS a machine with a running Docker engine, kind, kubectl, helm, openssl and internet
# access (images and charts). It does not run on the project's dev/CI machines (no Docker).
#   deploy/quickstart/kind.sh          # create and install; prints what to do next
#   deploy/quickstart/kind.sh down     # delete the cluster
# Settings: CLUSTER (mzchat), IMAGE (ghcr.io/mzchat/mzchatd), TAG (dev; built with `make image`
# and loaded into kind unless SKIP_BUILD=1), STATE (where the CA and values are written).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${CLUSTER:-mzchat}
IMAGE=${IMAGE:-ghcr.io/mzchat/mzchatd}
TAG=${TAG:-dev}
STATE=${STATE:-$HOME/.cache/mzchat/quickstart}
ORIGIN_HOST=chat.mzchat.test
MEDIA_HOST=media.mzchat.test
NS=chat

if [ "${1:-}" = down ]; then exec kind delete cluster --name "$CLUSTER"; fi
for tool in docker kind kubectl helm openssl; do
  command -v "$tool" >/dev/null || { echo "kind.sh: $tool is required (see deploy/quickstart/README.md)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "kind.sh: the Docker engine is not running" >&2; exit 1; }
mkdir -p "$STATE"

step() { printf '\n== %s\n' "$*"; }

step "cluster $CLUSTER (host ports 80 and 443 to the ingress controller)"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 120s --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels: {ingress-ready: "true"}
    extraPortMappings:
      - {containerPort: 80, hostPort: 80}
      - {containerPort: 443, hostPort: 443}
KIND
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

if [ "${SKIP_BUILD:-}" != 1 ]; then
  step "image $IMAGE:$TAG (and -debug for helm test)"
  make image IMAGE="$IMAGE" IMAGE_TAG="$TAG"
  kind load docker-image --name "$CLUSTER" "$IMAGE:$TAG" "$IMAGE:$TAG-debug"
fi

step "ingress-nginx on the node's ports 80/443"
helm upgrade --install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx \
  -n ingress-nginx --create-namespace --wait \
  --set controller.hostPort.enabled=true --set controller.service.type=ClusterIP \
  --set-string controller.nodeSelector.ingress-ready=true

# Pods (helm test's round trip) resolve the public hosts to the ingress controller too.
step "cluster DNS: $ORIGIN_HOST and $MEDIA_HOST -> ingress-nginx"
target=ingress-nginx-controller.ingress-nginx.svc.cluster.local
if ! kubectl -n kube-system get configmap coredns -o jsonpath='{.data.Corefile}' | grep -q "$ORIGIN_HOST"; then
  kubectl -n kube-system get configmap coredns -o jsonpath='{.data.Corefile}' |
    sed "s/^\( *\)ready$/\1ready\n\1rewrite name exact $ORIGIN_HOST $target\n\1rewrite name exact $MEDIA_HOST $target/" \
      >"$STATE/Corefile"
  kubectl -n kube-system create configmap coredns --from-file=Corefile="$STATE/Corefile" \
    --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n kube-system rollout restart deployment coredns
fi

step "TLS: a private CA ($STATE/ca.crt) and a certificate for both hosts"
if [ ! -f "$STATE/tls.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mzchat quickstart CA" \
    -keyout "$STATE/ca.key" -out "$STATE/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$ORIGIN_HOST" \
    -keyout "$STATE/tls.key" -out "$STATE/tls.csr" 2>/dev/null
  openssl x509 -req -in "$STATE/tls.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
    -days 30 -extfile <(printf 'subjectAltName=DNS:%s,DNS:%s' "$ORIGIN_HOST" "$MEDIA_HOST") \
    -out "$STATE/tls.crt" 2>/dev/null
fi
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" create secret tls chat-tls --cert="$STATE/tls.crt" --key="$STATE/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" create secret generic chat-ca --from-file=ca.crt="$STATE/ca.crt" \
  --dry-run=client -o yaml | kubectl apply -f -

step "NATS with JetStream (one server)"
helm upgrade --install nats nats --repo https://nats-io.github.io/k8s/helm/charts \
  -n nats --create-namespace --wait \
  --set config.jetstream.enabled=true --set config.jetstream.fileStore.pvc.size=1Gi

step "PostgreSQL and SeaweedFS (S3): single pods, quickstart only"
kubectl apply -f deploy/quickstart/backing-services.yaml
kubectl -n db rollout status statefulset/postgres --timeout=180s
kubectl -n storage rollout status deployment/seaweedfs --timeout=180s

step "mzchat operator"
helm upgrade --install mzchat-operator charts/mzchat-operator -n mzchat-system --create-namespace \
  --set image.repository="$IMAGE" --set image.tag="$TAG" --set replicas=1 --wait

step "homeserver chat"
cat >"$STATE/values.yaml" <<VALUES
origin: https://$ORIGIN_HOST
assetsOrigin: https://$MEDIA_HOST
image: {repository: $IMAGE, tag: $TAG}
services:
  identity: {replicas: 1}
  guild: {replicas: 1, autoscaling: {enabled: false}}
  federationSync: {replicas: 1, autoscaling: {enabled: false}}
  pushRelay: {replicas: 1}
  media: {replicas: 1}
database: {url: "postgres://mzchat:quickstart@postgres.db:5432/mzchat"}
nats: {url: "nats://nats.nats:4222", streamReplicas: 1}
objectStore:
  endpoint: http://seaweedfs.storage:8333
  bucket: mzchat-media
  pathStyle: true
  accessKeyId: quickstart # SeaweedFS without an S3 config accepts any key
  secretAccessKey: quickstart
route:
  ingress: {enabled: true, className: nginx, tlsSecretName: chat-tls}
tests:
  roundTrip: {caSecretName: chat-ca}
VALUES
helm upgrade --install chat charts/mzchat -n "$NS" -f "$STATE/values.yaml"
kubectl -n "$NS" wait hs/chat --for=condition=Available --timeout=10m

cat <<DONE

Homeserver chat is up. Next:
  helm test chat -n $NS --logs               # gRPC health and a message round trip
  echo "127.0.0.1 $ORIGIN_HOST $MEDIA_HOST" | sudo tee -a /etc/hosts
  export SSL_CERT_FILE=$STATE/ca.crt MZCHAT_SERVER=https://$ORIGIN_HOST
  mzchat keygen && mzchat login --name you && mzchat guild create Quickstart
  deploy/e2e/run.sh                          # the upgrade path, against this cluster
  deploy/quickstart/kind.sh down             # remove everything
DONE
