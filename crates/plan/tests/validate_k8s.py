#!/usr/bin/env python3
"""Validates rendered Kubernetes objects offline.

Usage: validate_k8s.py SCHEMA_DIR FILE...

Built-in kinds (NetworkPolicy, ...) go through kubernetes-validate, strict
(unknown fields refused), against the Kubernetes version it defaults to.
Calico kinds go against the openAPIV3Schema of Calico's published CRDs and
kubeadm/kubelet configs against the schemas in SCHEMA_DIR (see
data/README.md for where each comes from); every object schema is made
strict here (additionalProperties: false), as `kubectl apply
--validate=strict` would refuse unknown fields. A kind with no schema is a
failure, never a pass.

Prints one line per object and exits 1 if any object fails.
"""

import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = {
    ("projectcalico.org/v3", "IPPool"): "calico-ippool.json",
    ("projectcalico.org/v3", "BGPConfiguration"): "calico-bgpconfiguration.json",
    ("projectcalico.org/v3", "BGPPeer"): "calico-bgppeer.json",
    ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"): "kubeadm-clusterconfiguration-v1beta4.json",
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): "kubelet-kubeletconfiguration-v1beta1.json",
}


def strict(schema):
    """Adds additionalProperties: false to every object schema with properties."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        # Kubernetes evaluates patterns with Go's RE2, which takes an inline
        # flag such as `^(?i)...` anywhere; Python wants it first.
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern and not pattern.startswith("(?i)"):
            schema["pattern"] = "(?i)" + pattern.replace("(?i)", "")
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    schema_dir = sys.argv[1]
    failures = 0
    checked = 0
    version = kubernetes_validate.latest_version()
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        for doc in docs:
            checked += 1
            key = (doc.get("apiVersion"), doc.get("kind"))
            name = (doc.get("metadata") or {}).get("name", "-")
            try:
                if key in SCHEMAS:
                    with open(os.path.join(schema_dir, SCHEMAS[key]), encoding="utf-8") as f:
                        schema = strict(json.load(f))
                    jsonschema.validate(doc, schema)
                    how = SCHEMAS[key]
                else:
                    kubernetes_validate.validate(doc, version, strict=True)
                    how = f"kubernetes-validate {version} strict"
                print(f"ok   {path}: {key[1]}/{name} ({how})")
            except Exception as e:  # every kind of failure counts
                failures += 1
                msg = getattr(e, "message", None) or str(e)
                print(f"FAIL {path}: {key[1]}/{name}: {type(e).__name__}: {msg}")
    print(f"{checked} object(s) checked, {failures} failed")
    if checked == 0 or failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
