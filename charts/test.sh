#!/usr/bin/env bash
# Offline checks of both Helm charts and deploy/examples (no cluster needed):
# - helm lint --strict and helm template with the default values and every ci/*-values.yaml
# - what the operator builds (mzchat-operator render) for every rendered Homeserver,
#   deploy/examples and its own fixtures: accepted by its validation, and valid objects
# - every rendered object: kubernetes-validate (built-in kinds), the Homeserver CRD's schema
#   (Homeservers, once the CRD is generated), the shape of PrometheusRules/ServiceMonitors
# - rendering without required values fails with the chart's own message
# - yamllint on values and examples
# Ends with one line "charts: N passed, M failed, K skipped"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

bin=$(deploy/tools/install.sh) || { echo "charts: 0 passed, 1 failed (tools not installed)"; exit 1; }
export PATH="$bin:$PATH"
py="$(dirname "$(readlink -f "$bin/yamllint")")/python" # the tools venv: PyYAML
KUBE=1.35.0
CRD=deploy/crds/mzchat.io_homeservers.yaml
CHART_CRD=charts/mzchat-operator/crds/homeservers.yaml
work="${TMPDIR:-/tmp}/mzchat-chart-test" # one dir, emptied each run
rm -rf "$work" && mkdir -p "$work"

passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); echo "ok    $1"; }
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }
fail() {
  failed=$((failed + 1)); echo "FAIL  $1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | head -n 30 | sed 's/^/      /'
}
run() { # NAME CMD...: passes when CMD does
  local name=$1 out; shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}
expect_fail() { # NAME MESSAGE CMD...: passes when CMD fails saying MESSAGE
  local name=$1 message=$2 out; shift 2
  if out=$("$@" 2>&1); then fail "$name: succeeded, should have failed with: $message"
  elif grep -qF -- "$message" <<<"$out"; then ok "$name"
  else fail "$name: failed without saying: $message" "$out"; fi
}

# The Homeserver CRD, generated from the operator's Rust types (make crds).
schema="$work/homeserver.schema.json"
if [ -f "$CRD" ]; then
  run "crd: kubernetes-validate" kubernetes-validate -k "$KUBE" --strict --quiet "$CRD"
  run "crd: strict schema extracted" "$py" charts/check_objects.py schema "$CRD" "$schema"
  run "crd: charts/mzchat-operator/crds is a copy of $CRD" cmp "$CRD" "$CHART_CRD"
else
  skip "Homeserver CRD: skipped: CRD not generated yet ($CRD)"
fi

validate() { # NAME FILE...: every object in FILEs
  local name=$1 dir="$work/objects/$1"; shift
  mkdir -p "$dir"
  run "$name: objects parsed, custom kinds well-formed" "$py" charts/check_objects.py split "$dir" "$@"
  if [ -s "$dir/core.yaml" ]; then
    run "$name: kubernetes-validate $KUBE" kubernetes-validate -k "$KUBE" --strict --quiet "$dir/core.yaml"
  fi
  for hs in "$dir"/homeserver-*.json; do
    [ -e "$hs" ] || continue
    if [ -f "$schema" ]; then
      run "$name: Homeserver matches the CRD" check-jsonschema --schemafile "$schema" "$hs"
    else
      skip "$name: Homeserver against the CRD: skipped: CRD not generated yet"
    fi
  done
}

operator_builds() { # NAME FILE: the operator accepts FILE's Homeserver; validate what it builds
  local name="$1 -> operator" built="$work/built-$(echo "$1" | tr '/: ' '---').yaml"
  if "${CARGO:-cargo}" run -q -p mzchat-operator -- render --namespace chat "$2" >"$built" 2>"$built.err"; then
    ok "$name: accepted and built"
    validate "$name" "$built"
  else
    fail "$name: accepted and built" "$(cat "$built.err")"
  fi
}

for chart in mzchat mzchat-operator; do
  flags=(--kube-version "$KUBE" --namespace chat)
  [ "$chart" = mzchat-operator ] && flags=(--kube-version "$KUBE" --namespace mzchat-system --include-crds)
  for values in default charts/"$chart"/ci/*-values.yaml; do
    variant=$(basename "$values" -values.yaml)
    files=()
    [ "$values" = default ] || files=(-f "$values")
    run "$chart/$variant: helm lint --strict" helm lint --strict charts/"$chart" "${files[@]}"
    # mzchat's defaults lack the required values: that case is checked below.
    [ "$chart/$variant" = mzchat/default ] && continue
    out="$work/$chart-$variant.yaml"
    if helm template test charts/"$chart" "${flags[@]}" "${files[@]}" >"$out" 2>"$out.err"; then
      ok "$chart/$variant: helm template"
      validate "$chart/$variant" "$out"
      [ "$chart" = mzchat ] && operator_builds "$chart/$variant" "$out"
    else
      fail "$chart/$variant: helm template" "$(cat "$out.err")"
    fi
  done
done

# Missing or contradictory values fail with the chart's message.
min=(-f charts/mzchat/ci/minimal-values.yaml)
tpl() { helm template test charts/mzchat "$@"; }
# An ingress with no settings of its own is still an ingress ({}), not a null route.
bare="$work/mzchat-bare-ingress.yaml"
if tpl "${min[@]}" --set route.ingress.enabled=true >"$bare" 2>&1 &&
  grep -A1 '^    ingress:' "$bare" | grep -qF '{}'; then
  ok "mzchat: a bare ingress renders as {}"
  validate "mzchat/bare-ingress" "$bare"
else
  fail "mzchat: a bare ingress renders as {}" "$(grep -A2 'route:' "$bare")"
fi
# Rate limits: an unquoted off (YAML 1.1's false) still renders as "off", and the operator
# accepts the result.
limits="$work/mzchat-rate-limits.yaml"
printf 'rateLimits:\n  all: off\n  typing: off\n  login: 3/h\nforwardedForHops: 0\n' >"$work/rate-limits-values.yaml"
if tpl "${min[@]}" -f "$work/rate-limits-values.yaml" >"$limits" 2>&1 &&
  grep -qF '"typing": "off"' "$limits" && grep -qF '"all": "off"' "$limits" &&
  grep -qF 'forwardedForHops: 0' "$limits"; then
  ok "mzchat: rate limits render, a bare off as \"off\""
  validate "mzchat/rate-limits" "$limits"
  operator_builds "mzchat/rate-limits" "$limits"
else
  fail "mzchat: rate limits render, a bare off as \"off\"" "$(grep -A5 'rateLimits:' "$limits" || cat "$limits")"
fi
expect_fail "mzchat: no values" "origin is required" tpl
expect_fail "mzchat: no assetsOrigin" "assetsOrigin is required" tpl "${min[@]}" --set assetsOrigin=
expect_fail "mzchat: no database" "database.url is required" tpl "${min[@]}" --set database.url=
expect_fail "mzchat: no nats" "nats.url is required" tpl "${min[@]}" --set nats.url=
expect_fail "mzchat: no bucket" "objectStore.bucket is required" tpl "${min[@]}" --set objectStore.bucket=
expect_fail "mzchat: no S3 credentials" "objectStore credentials" \
  tpl "${min[@]}" --set objectStore.accessKeyId= --set objectStore.secretAccessKey=
expect_fail "mzchat: inline and existing database" "not both" tpl "${min[@]}" --set database.existingSecret=db
expect_fail "mzchat: DatabasePerService without urls" "database.urls.identity is required" \
  tpl "${min[@]}" --set database.layout=DatabasePerService
expect_fail "mzchat: Token policy without tokens" "registration.tokens (policy Token) is required" \
  tpl "${min[@]}" --set registration.policy=Token
expect_fail "mzchat: two routes" "enable at most one of ingress and gateway" \
  tpl "${min[@]}" --set route.ingress.enabled=true --set route.gateway.enabled=true
expect_fail "mzchat: schema rejects an http origin" "does not match pattern" \
  tpl "${min[@]}" --set origin=http://chat.example.org
expect_fail "mzchat: schema rejects an unknown policy" "registration/policy" \
  tpl "${min[@]}" --set registration.policy=Sometimes
expect_fail "mzchat: schema rejects unknown keys" "additional properties" \
  tpl "${min[@]}" --set databse.url=x
expect_fail "mzchat: schema rejects an unknown rate limit" "invalid propertyName 'message.sned'" \
  tpl "${min[@]}" --set 'rateLimits.message\.sned=30/10s'
expect_fail "mzchat: schema rejects a rate limit without a period" "/rateLimits/login" \
  tpl "${min[@]}" --set-string rateLimits.login=10
expect_fail "mzchat: schema rejects forwardedForHops above 10" "/forwardedForHops" \
  tpl "${min[@]}" --set forwardedForHops=11

for example in deploy/examples/*.yaml deploy/quickstart/*.yaml; do
  validate "$example" "$example"
done

# What the operator builds from each example and its test fixtures.
for homeserver in deploy/examples/homeserver-*.yaml operator/tests/fixtures/valid-*.yaml; do
  operator_builds "$(basename "$homeserver" .yaml)" "$homeserver"
done

lint_config='{extends: default, rules: {line-length: {max: 120}, document-start: disable,
  comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}'
run "yamllint: values and examples" yamllint -s -d "$lint_config" \
  charts/*/values.yaml charts/*/ci/*.yaml deploy/examples/*.yaml deploy/quickstart/*.yaml

echo "charts: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
