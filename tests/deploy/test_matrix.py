#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The chart's other branches render valid manifests too.

deploy/k8s/ shows the defaults; this renders every template under value
sets that take the branches those files do not (huge pages, each NVMe
volume kind, no credentials, a session token, extra env/args/volumes,
autoplan, scheduling fields, pull secrets, prefault) and runs
validate_k8s.mjs over the result.  An invalid nvme.volume must fail to
render.

usage: test_matrix.py NODE
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "deploy"))
import render  # noqa: E402

TOL = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
SEL = {"node.kubernetes.io/instance-type": "p5.48xlarge"}
COMMON = {
    "stoker.hugetlb.enabled": True,
    "stoker.prefault": True,
    "stoker.credentials.sessionTokenKey": "AWS_SESSION_TOKEN",
    "stoker.s3.endpoint": "http://minio.storage:9000",
    "stoker.s3.region": "us-west-2",
    "stoker.allowHosts": ["minio.storage:9000"],
    "stoker.extraArgs": ["--max-inflight", "128", "--allow-root=/mnt/lustre"],
    "stoker.extraEnv": [{"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/etc/stoker/aws/credentials"}],
    "stoker.extraVolumes": [{"name": "lustre", "hostPath": {"path": "/mnt/lustre", "type": "Directory"}}],
    "stoker.extraVolumeMounts": [{"name": "lustre", "mountPath": "/mnt/lustre", "readOnly": True}],
    "trainer.autoplan": True,
    "trainer.env": [{"name": "NCCL_DEBUG", "value": "INFO"}],
    "trainer.tolerations": TOL,
    "trainer.nodeSelector": SEL,
    "daemonset.tolerations": TOL,
    "daemonset.nodeSelector": SEL,
    "daemonset.priorityClassName": "system-node-critical",
    "imagePullSecrets": [{"name": "regcred"}],
    "stoker.metrics.scrape": False,
}
CASES = [
    ("sidecar-pvc", {"mode": "sidecar", "stoker.nvme.enabled": True,
                     "stoker.nvme.volume": "persistentVolumeClaim", **COMMON}),
    ("sidecar-hostpath", {"mode": "sidecar", "stoker.nvme.enabled": True, "stoker.nvme.volume": "hostPath"}),
    ("sidecar-nocreds", {"mode": "sidecar", "stoker.credentials.secretName": ""}),
    ("jobset-memory-nvme", {"mode": "sidecar", "jobset.enabled": True, "stoker.nvme.enabled": True,
                            "stoker.nvme.emptyDir": {"medium": "Memory", "sizeLimit": "110Gi"}, **COMMON}),
    ("daemonset-emptydir", {"mode": "daemonset", "stoker.nvme.enabled": True, **COMMON}),
    ("daemonset-none", {"mode": "daemonset", "stoker.credentials.secretName": ""}),
]


def main():
    node = sys.argv[1]
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for name, sets in CASES:
            text = render.render(sorted(sets.items()))
            with open(os.path.join(d, name + ".yaml"), "w", encoding="utf-8") as f:
                f.write(text)
            print("rendered %s: %d objects" % (name, text.count("\n---\n") + text.startswith("---\n")))
        p = subprocess.run([node, os.path.join(HERE, "validate_k8s.mjs"), d],
                           capture_output=True, text=True, timeout=120)
        print(p.stdout + p.stderr)
        if p.returncode:
            bad += 1
    try:
        render.render([("stoker.nvme.enabled", True), ("stoker.nvme.volume", "local")])
        print("FAIL: stoker.nvme.volume=local rendered")
        bad += 1
    except render.RenderError as e:
        print("ok: stoker.nvme.volume=local refused: %s" % e)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
