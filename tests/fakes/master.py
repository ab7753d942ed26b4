"""Stateful fakes of what a master's API server scripts call (master-apiserver-config.sh,
master-encryption-rotate.sh): small Python programs written into a bin directory put first on
PATH, sharing one JSON state file ($FAKE_STATE) with the test.

- crictl: the kubelet. Its kube-apiserver pod carries the annotations of the manifest in
  $KUBERNETES_DIR/manifests (the kubelet replaced the pod as soon as the manifest changed);
  with state["kubelet_restarts"] false it keeps the pod it had (a stuck kubelet).
- curl: the API server's /readyz, up while state["api_up"].
Tests add their own kubeadm or kubectl to the same bin directory with `install`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

FAKES = {
    "crictl": """
        import json, os, sys, yaml
        state = json.load(open(os.environ["FAKE_STATE"])); state["calls"].append(["crictl", *sys.argv[1:]])
        manifest = os.environ["KUBERNETES_DIR"] + "/manifests/kube-apiserver.yaml"
        if state.get("kubelet_restarts", True):
            state["pod"] = yaml.safe_load(open(manifest))["metadata"]["annotations"]
        json.dump(state, open(os.environ["FAKE_STATE"], "w"))
        print(json.dumps({"items": [{"state": "SANDBOX_READY", "annotations": state["pod"]}]}, indent=2))
    """,
    "curl": """
        import json, os, sys
        state = json.load(open(os.environ["FAKE_STATE"])); state["calls"].append(["curl"])
        json.dump(state, open(os.environ["FAKE_STATE"], "w"))
        sys.exit(0 if state["api_up"] else 7)
    """,
}


def install(bin_dir: Path, bodies: dict[str, str]) -> None:
    """Write each fake (name -> Python source) as an executable run by this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        (bin_dir / name).write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        (bin_dir / name).chmod(0o755)
