#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""validate_k8s.mjs must fail on broken manifests, not only pass good ones.

Copies deploy/k8s/ into a temporary directory, breaks one thing at a time
(a misspelled field, a wrong type, a bad enum, a missing required field, an
unknown kind, a JobSet field, stoker's own rules, YAML syntax), and checks
that the validator exits 1 and names the problem; then that the unbroken
copy passes.

usage: test_validate_rejects.py NODE
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
K8S = os.path.join(REPO, "deploy", "k8s")
VALIDATOR = os.path.join(HERE, "validate_k8s.mjs")

# (file, old text (must occur exactly once), new text, a phrase the validator must print)
CASES = [
    ("job-sidecar.yaml", "restartPolicy: Always", "restartPolicyy: Always",
     "restartPolicyy: unknown field"),
    ("job-sidecar.yaml", "containerPort: 9464", 'containerPort: "9464"', "containerPort: must be integer"),
    ("daemonset.yaml", "          imagePullPolicy: IfNotPresent\n          command: [\"/opt/stoker/bin/stokerd\"]",
     "          imagePullPolicy: Sometimes\n          command: [\"/opt/stoker/bin/stokerd\"]", "imagePullPolicy: must be one of"),
    ("trainer-on-daemonset.yaml", "        - name: trainer\n          image:", "        - image:",
     "missing required field name"),
    ("daemonset.yaml", "kind: DaemonSet", "kind: DaemonSett", "no schema for apiVersion apps/v1 kind DaemonSett"),
    ("job-sidecar.yaml", "apiVersion: batch/v1", "apiVersion: batch/v2", "no schema for apiVersion batch/v2"),
    ("multinode-jobset.yaml", "enableDNSHostnames: true", "enableDnsHostnames: true",
     "network/enableDnsHostnames: unknown field"),
    ("multinode-jobset.yaml", "operator: All", "operator: Every", "successPolicy/operator: must be one of"),
    ("multinode-jobset.yaml", "parallelism: 1", "paralelism: 1",
     "replicatedJobs/0/template/spec/paralelism: unknown field"),
    ("multinode-jobset.yaml", "replicas: 2", "replicas: two", "replicas: must be integer"),
    ("job-sidecar.yaml", "--ram=8Gi", "--ram=9Gi", "must hold --ram 9Gi"),
    ("job-sidecar.yaml", "--metrics=0.0.0.0:9464", "--metrics=127.0.0.1:9464", "must listen on 0.0.0.0:PORT"),
    ("daemonset.yaml", "path: /healthz", "path: /metrics", "livenessProbe must be httpGet /healthz"),
    ("job-sidecar.yaml", "          restartPolicy: Always\n", "", "restartPolicy: Always"),
    ("job-sidecar.yaml",
     "valueFrom:\n                secretKeyRef:\n                  name: stoker-s3\n                  key: AWS_ACCESS_KEY_ID",
     'value: "AKIAEXAMPLE"', "AWS_ACCESS_KEY_ID must come from a Secret"),
    ("trainer-on-daemonset.yaml", "value: /run/stoker/stoker.sock", "value: /var/run/stoker.sock",
     "STOKER_SOCKET is not on a mounted volume"),
    ("job-sidecar.yaml", "            capabilities:\n              drop: [\"ALL\"]\n          volumeMounts:\n            - name: stoker-socket",
     "            capabilities:\n              drop: [\"ALL\"]\n              add: [\"IPC_LOCK\"]\n          volumeMounts:\n"
     "            - name: stoker-socket", "adds capabilities IPC_LOCK"),
    ("trainer-on-daemonset.yaml", "runAsGroup: 65532", "runAsGroup: 1000", "every pod must share stokerd's gid"),
    ("job-sidecar.yaml", "              mountPath: /var/lib/stoker/nvme", "              mountPath: /var/lib/stoker/nvm",
     "--nvme-dir /var/lib/stoker/nvme is not a mounted volume"),
    ("job-sidecar.yaml", "kind: Job\n", "kind: Job\nkind: Pod\n", "document 1"),
    ("daemonset.yaml", "  selector:\n", "  selector:\n bad: indent\n", "document 1"),
]


def run(node, d):
    p = subprocess.run([node, VALIDATOR, d], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    node = sys.argv[1]
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "k8s")
        shutil.copytree(K8S, d)
        rc, out = run(node, d)
        if rc != 0:
            print("the unbroken copy of deploy/k8s fails:\n" + out)
            return 1
        for fn, old, new, want in CASES:
            path = os.path.join(d, fn)
            with open(path, encoding="utf-8") as f:
                good = f.read()
            if good.count(old) != 1:
                print("FAIL %s: %r occurs %d times (update the case)" % (fn, old, good.count(old)))
                bad += 1
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(good.replace(old, new))
            try:
                rc, out = run(node, d)
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(good)
            label = "%s: %r -> %r" % (fn, old.strip()[:40], new.strip()[:40])
            if rc != 1 or want not in out:
                print("FAIL %s: exit %d, expected 1 and %r in:\n%s" % (label, rc, want, out))
                bad += 1
            else:
                line = next(x for x in out.splitlines() if want in x)
                print("ok   %s\n       %s" % (label, line))
        rc, out = run(node, d)
        if rc != 0:
            print("the restored copy fails:\n" + out)
            bad += 1
    print("%d of %d broken manifests rejected" % (len(CASES) - bad, len(CASES)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
