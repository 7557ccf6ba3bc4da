#!/usr/bin/env python3
"""Sorts rendered Kubernetes objects for charts/test.sh (run with the tools venv's python).

  check_objects.py split OUTDIR FILE...  objects of built-in kinds go to OUTDIR/core.yaml (for
      kubernetes-validate), each Homeserver to OUTDIR/homeserver-N.json (for check-jsonschema
      against the CRD); PrometheusRules, ServiceMonitors and Gateway API routes, whose CRDs no
      schema here knows, are checked for their shape right away. Exit 1 on any problem.
  check_objects.py schema CRD OUT.json   the CRD's openAPIV3Schema, made strict: unknown
      fields are errors (the API server would silently prune them, hiding chart/CRD drift).
"""
import json
import os
import sys

import yaml

# Groups whose kinds kubernetes-validate has no schema for.
CUSTOM_GROUPS = ("mzchat.io/", "monitoring.coreos.com/", "gateway.networking.k8s.io/")


def problems_of_monitoring(obj):
    """The shape prometheus-operator needs: what we can check without its CRDs."""
    spec = obj.get("spec") or {}
    kind = obj["kind"]
    if kind == "PrometheusRule":
        groups = spec.get("groups") or []
        if not groups:
            return ["spec.groups is empty"]
        return [
            f"group {g.get('name')!r}: a rule without alert/record and expr"
            for g in groups
            if not g.get("rules")
            or any(not (r.get("alert") or r.get("record")) or not r.get("expr") for r in g["rules"])
        ]
    if kind == "ServiceMonitor":
        if not spec.get("selector") or not spec.get("endpoints"):
            return ["spec.selector and spec.endpoints are required"]
        return []
    if kind in ("GRPCRoute", "HTTPRoute"):
        rules = spec.get("rules") or []
        if not spec.get("parentRefs") or not rules:
            return ["spec.parentRefs and spec.rules are required"]
        return [
            f"rule {n}: no backendRefs with a name and port"
            for n, rule in enumerate(rules)
            if not rule.get("backendRefs")
            or any(not b.get("name") or not b.get("port") for b in rule["backendRefs"])
        ]
    return [f"unexpected kind {kind} in {obj['apiVersion']}"]


def split(outdir, files):
    core, homeservers, errors = [], [], []
    for path in files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for obj in docs:
            where = f"{path}: {obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            if not obj.get("apiVersion") or not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
                errors.append(f"{where}: apiVersion, kind and metadata.name are required")
            elif obj["kind"] == "Homeserver" and obj["apiVersion"].startswith("mzchat.io/"):
                homeservers.append(obj)
            elif obj["apiVersion"].startswith(CUSTOM_GROUPS):
                errors += [f"{where}: {p}" for p in problems_of_monitoring(obj)]
            else:
                core.append(obj)
    with open(os.path.join(outdir, "core.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(core, f)
    for n, obj in enumerate(homeservers):
        with open(os.path.join(outdir, f"homeserver-{n}.json"), "w", encoding="utf-8") as f:
            json.dump(obj, f)
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


def strict(schema):
    """additionalProperties: false wherever the CRD lists properties and keeps no unknowns."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def crd_schema(crd_path, out):
    with open(crd_path, encoding="utf-8") as f:
        crd = next(d for d in yaml.safe_load_all(f) if d)
    versions = crd["spec"]["versions"]
    version = next((v for v in versions if v.get("storage")), versions[0])
    schema = strict(version["schema"]["openAPIV3Schema"])
    # The API server owns these; generated CRD schemas may leave them out.
    schema.setdefault("properties", {}).update(
        apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"}
    )
    with open(out, "w", encoding="utf-8") as f:
        json.dump(schema, f)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "split":
        sys.exit(split(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) == 4 and sys.argv[1] == "schema":
        sys.exit(crd_schema(sys.argv[2], sys.argv[3]))
    sys.exit(__doc__)
