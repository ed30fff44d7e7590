{{/*
Named templates shared by the sidecar Job, the JobSet and the DaemonSet.
deploy/render.py renders these without Helm: keep to the subset its
docstring lists (no sprig beyond quote/toYaml/nindent/indent/eq/ne/not/
default/include, no parentheses, no variables but $).
*/}}

{{- define "stoker.labels" -}}
app.kubernetes.io/name: stoker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: stoker-chart
{{- end }}

{{/* Prometheus finds stokerd's /metrics through these pod annotations (stoker.metrics.scrape). */}}
{{- define "stoker.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.stoker.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/*
Restricted-profile settings for every container: nothing to escalate to, no
capabilities, nothing written outside its volumes.  stokerd needs no
capability: its RAM tier is memfd segments that it never mlocks (so no
IPC_LOCK and no RLIMIT_MEMLOCK), --hugetlb takes pages the operator reserved
through the hugepages-* resource, and io_uring needs none.
*/}}
{{- define "stoker.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "stoker.podSecurity" -}}
runAsNonRoot: true
runAsGroup: {{ .Values.ids.gid }}
fsGroup: {{ .Values.ids.gid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The stokerd container.  In sidecar mode it is an init container with
restartPolicy: Always (a native sidecar: started before the trainer, kept
running beside it, stopped after it; a Job completes when the trainer
exits).  Its startupProbe holds the trainer back until the socket listens.
*/}}
{{- define "stoker.daemonContainer" -}}
- name: stokerd
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq .Values.mode "sidecar" }}
  restartPolicy: Always
  {{- end }}
  command: ["/opt/stoker/bin/stokerd"]
  args:
    - --foreground
    - --socket={{ .Values.socket.dir }}/stoker.sock
    - --ram={{ .Values.stoker.ram }}
    - --isolate={{ .Values.stoker.isolate }}
    - --metrics=0.0.0.0:{{ .Values.stoker.metrics.port }}
    - --log-format={{ .Values.stoker.logFormat }}
    - --log-level={{ .Values.stoker.logLevel }}
    {{- if .Values.stoker.prefault }}
    - --prefault
    {{- end }}
    {{- if .Values.stoker.hugetlb.enabled }}
    - --hugetlb
    {{- end }}
    {{- if .Values.stoker.nvme.enabled }}
    - --nvme-dir=/var/lib/stoker/nvme
    - --nvme={{ .Values.stoker.nvme.size }}
    {{- end }}
    {{- if .Values.stoker.s3.endpoint }}
    - --s3-endpoint={{ .Values.stoker.s3.endpoint }}
    {{- end }}
    {{- if .Values.stoker.s3.region }}
    - --s3-region={{ .Values.stoker.s3.region }}
    {{- end }}
    {{- range .Values.stoker.allowHosts }}
    - --allow-host={{ . }}
    {{- end }}
    {{- range .Values.stoker.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- if or .Values.stoker.credentials.secretName .Values.stoker.extraEnv }}
  env:
  {{- end }}
  {{- if .Values.stoker.credentials.secretName }}
    - name: AWS_ACCESS_KEY_ID
      valueFrom:
        secretKeyRef:
          name: {{ .Values.stoker.credentials.secretName }}
          key: {{ .Values.stoker.credentials.accessKeyIdKey }}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom:
        secretKeyRef:
          name: {{ .Values.stoker.credentials.secretName }}
          key: {{ .Values.stoker.credentials.secretAccessKeyKey }}
    {{- if .Values.stoker.credentials.sessionTokenKey }}
    - name: AWS_SESSION_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ .Values.stoker.credentials.secretName }}
          key: {{ .Values.stoker.credentials.sessionTokenKey }}
    {{- end }}
  {{- end }}
  {{- if .Values.stoker.extraEnv }}
    {{- toYaml .Values.stoker.extraEnv | nindent 4 }}
  {{- end }}
  ports:
    - name: metrics
      containerPort: {{ .Values.stoker.metrics.port }}
      protocol: TCP
  # /readyz: the socket listens, the RAM budget is allocated, and every
  # backend tried so far answered once.  /healthz: the event loop is alive.
  startupProbe:
    httpGet:
      path: /readyz
      port: metrics
    periodSeconds: 1
    failureThreshold: 120
  readinessProbe:
    httpGet:
      path: /readyz
      port: metrics
    periodSeconds: 5
    timeoutSeconds: 3
  livenessProbe:
    httpGet:
      path: /healthz
      port: metrics
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  # The RAM tier is charged to this container's memory cgroup (stokerd
  # writes every cached page first; trainers only map them): the memory
  # limit must hold --ram plus stokerd's own RSS, or hugetlb pages hold it.
  resources:
    requests:
      {{- toYaml .Values.stoker.resources.requests | nindent 6 }}
      {{- if .Values.stoker.hugetlb.enabled }}
      {{ .Values.stoker.hugetlb.resource }}: {{ .Values.stoker.ram }}
      {{- end }}
    limits:
      {{- toYaml .Values.stoker.resources.limits | nindent 6 }}
      {{- if .Values.stoker.hugetlb.enabled }}
      {{ .Values.stoker.hugetlb.resource }}: {{ .Values.stoker.ram }}
      {{- end }}
  securityContext:
    runAsUser: {{ .Values.ids.stokerUid }}
    {{- include "stoker.containerSecurity" . | nindent 4 }}
  volumeMounts:
    - name: stoker-socket
      mountPath: {{ .Values.socket.dir }}
    {{- if .Values.stoker.nvme.enabled }}
    - name: stoker-nvme
      mountPath: /var/lib/stoker/nvme
    {{- end }}
    {{- if .Values.stoker.extraVolumeMounts }}
    {{- toYaml .Values.stoker.extraVolumeMounts | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
Copies libstoker_shim.so, libstoker.so* and the Python package from the
stoker image (deploy/stoker-install-client) into the pod's stoker-client
emptyDir, mounted at /stoker in the trainer: /stoker/lib and
/stoker/python/stoker (which finds /stoker/lib/libstoker.so.0 by itself).
They need only glibc >= 2.34 in the trainer's image.
*/}}
{{- define "stoker.installClient" -}}
- name: install-stoker-client
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/usr/local/bin/stoker-install-client", "/stoker"]
  resources:
    requests:
      cpu: 100m
      memory: 64Mi
    limits:
      memory: 64Mi
  securityContext:
    runAsUser: {{ .Values.ids.trainerUid }}
    {{- include "stoker.containerSecurity" . | nindent 4 }}
  volumeMounts:
    - name: stoker-client
      mountPath: /stoker
{{- end }}

{{/*
hostPath directories are created by the kubelet as root, mode 0755: this
init container (root, with CHOWN and FOWNER only) hands them to stokerd.  It
is the reason a pod with a hostPath needs more than the restricted Pod
Security level (hostPath alone already needs the privileged level).
*/}}
{{- define "stoker.prepareHostDirs" -}}
- name: prepare-host-dirs
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - /bin/sh
    - -c
    - >-
      set -e;
      {{- if eq .Values.mode "daemonset" }}
      chown {{ .Values.ids.stokerUid }}:{{ .Values.ids.gid }} /host/socket;
      chmod 0750 /host/socket;
      {{- end }}
      {{- if .Values.stoker.nvme.enabled }}
      {{- if eq .Values.stoker.nvme.volume "hostPath" }}
      chown {{ .Values.ids.stokerUid }}:{{ .Values.ids.gid }} /host/nvme;
      chmod 0700 /host/nvme;
      {{- end }}
      {{- end }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      memory: 16Mi
  securityContext:
    runAsUser: 0
    runAsNonRoot: false
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
      add: ["CHOWN", "FOWNER"]
  volumeMounts:
    {{- if eq .Values.mode "daemonset" }}
    - name: stoker-socket
      mountPath: /host/socket
    {{- end }}
    {{- if .Values.stoker.nvme.enabled }}
    {{- if eq .Values.stoker.nvme.volume "hostPath" }}
    - name: stoker-nvme
      mountPath: /host/nvme
    {{- end }}
    {{- end }}
{{- end }}

{{/* The tier-1 volume (sidecar and DaemonSet alike). */}}
{{- define "stoker.nvmeVolume" -}}
{{- if .Values.stoker.nvme.enabled }}
- name: stoker-nvme
  {{- if eq .Values.stoker.nvme.volume "emptyDir" }}
  emptyDir:
    {{- toYaml .Values.stoker.nvme.emptyDir | nindent 4 }}
  {{- else if eq .Values.stoker.nvme.volume "hostPath" }}
  hostPath:
    path: {{ .Values.stoker.nvme.hostPath }}
    type: DirectoryOrCreate
  {{- else if eq .Values.stoker.nvme.volume "persistentVolumeClaim" }}
  persistentVolumeClaim:
    claimName: {{ .Values.stoker.nvme.claimName }}
  {{- else }}
  {{- fail "stoker.nvme.volume must be emptyDir, hostPath or persistentVolumeClaim" }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
The trainer's environment: the shim preloaded, its map, the socket, and the
client files the init container copied.  STOKER_PLAN_GROUP is left unset on
purpose: stoker.run / stoker.torch give each rank process a plan group of
its own (host-pid-random) that its DataLoader workers inherit, so the ranks
sharing one stokerd never replace each other's plans.
*/}}
{{- define "stoker.trainerEnv" -}}
- name: LD_PRELOAD
  value: /stoker/lib/libstoker_shim.so
- name: STOKER_SHIM_MAP
  value: {{ .Values.trainer.shimMap | quote }}
- name: STOKER_SOCKET
  value: {{ .Values.socket.dir }}/stoker.sock
- name: PYTHONPATH
  {{- if .Values.trainer.autoplan }}
  value: /stoker/python/stoker/sitecustomize:/stoker/python
  {{- else }}
  value: /stoker/python
  {{- end }}
- name: HOME
  value: /tmp
{{- if .Values.trainer.env }}
{{- toYaml .Values.trainer.env | nindent 0 }}
{{- end }}
{{- end }}

{{- define "stoker.trainerSecurity" -}}
runAsUser: {{ .Values.ids.trainerUid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.trainer.readOnlyRootFilesystem }}
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "stoker.trainerMounts" -}}
- name: stoker-client
  mountPath: /stoker
  readOnly: true
- name: stoker-socket
  mountPath: {{ .Values.socket.dir }}
  {{- if eq .Values.mode "daemonset" }}
  readOnly: true
  {{- end }}
- name: dshm
  mountPath: /dev/shm
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "stoker.trainerVolumes" -}}
- name: stoker-client
  emptyDir:
    sizeLimit: 64Mi
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.trainer.shmSize }}
- name: tmp
  emptyDir: {}
{{- end }}

{{/*
The pod of the sidecar Job and of each JobSet worker: stokerd as a native
sidecar, the client files copied, the trainer.
*/}}
{{- define "stoker.sidecarPodSpec" -}}
restartPolicy: Never
automountServiceAccountToken: false
# stokerd drains in-flight fetches on SIGTERM; the trainer stops first.
terminationGracePeriodSeconds: 30
securityContext:
  {{- include "stoker.podSecurity" . | nindent 2 }}
{{- if .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml .Values.imagePullSecrets | nindent 2 }}
{{- end }}
{{- if .Values.trainer.nodeSelector }}
nodeSelector:
  {{- toYaml .Values.trainer.nodeSelector | nindent 2 }}
{{- end }}
{{- if .Values.trainer.tolerations }}
tolerations:
  {{- toYaml .Values.trainer.tolerations | nindent 2 }}
{{- end }}
initContainers:
  {{- include "stoker.installClient" . | nindent 2 }}
  {{- if .Values.stoker.nvme.enabled }}
  {{- if eq .Values.stoker.nvme.volume "hostPath" }}
  {{- include "stoker.prepareHostDirs" . | nindent 2 }}
  {{- end }}
  {{- end }}
  {{- include "stoker.daemonContainer" . | nindent 2 }}
containers:
  - name: trainer
    image: {{ .Values.trainer.image }}
    imagePullPolicy: {{ .Values.trainer.pullPolicy }}
    {{- if .Values.jobset.enabled }}
    # One process per GPU; each rank's DataLoader reads through this pod's
    # stokerd, and `-m stoker.run` plans each rank's epoch (its
    # DistributedSampler shard) in that rank's own plan group.
    command: ["torchrun"]
    args:
      - --nnodes={{ .Values.jobset.nodes }}
      - --nproc-per-node={{ .Values.jobset.procsPerNode }}
      - --node-rank=$(NODE_RANK)
      - --master-addr=$(MASTER_ADDR)
      - --master-port={{ .Values.jobset.port }}
      - -m
      - stoker.run
    {{- else }}
    command: [{{ .Values.trainer.python | quote }}]
    args:
      - -m
      - stoker.run
    {{- end }}
      - {{ .Values.trainer.script | quote }}
      {{- range .Values.trainer.args }}
      - {{ . | quote }}
      {{- end }}
    env:
      {{- include "stoker.trainerEnv" . | nindent 6 }}
      {{- if .Values.jobset.enabled }}
      - name: NODE_RANK
        valueFrom:
          fieldRef:
            fieldPath: metadata.annotations['jobset.sigs.k8s.io/job-index']
      - name: MASTER_ADDR
        value: {{ .Release.Name }}-workers-0-0.{{ .Release.Name }}
      {{- end }}
    {{- if .Values.jobset.enabled }}
    ports:
      - name: rendezvous
        containerPort: {{ .Values.jobset.port }}
        protocol: TCP
    {{- end }}
    resources:
      {{- if .Values.jobset.enabled }}
      {{- toYaml .Values.jobset.trainerResources | nindent 6 }}
      {{- else }}
      {{- toYaml .Values.trainer.resources | nindent 6 }}
      {{- end }}
    securityContext:
      {{- include "stoker.trainerSecurity" . | nindent 6 }}
    volumeMounts:
      {{- include "stoker.trainerMounts" . | nindent 6 }}
volumes:
  - name: stoker-socket
    emptyDir:
      sizeLimit: 1Mi
  {{- include "stoker.trainerVolumes" . | nindent 2 }}
  {{- if .Values.stoker.nvme.enabled }}
  {{- include "stoker.nvmeVolume" . | nindent 2 }}
  {{- end }}
  {{- if .Values.stoker.extraVolumes }}
  {{- toYaml .Values.stoker.extraVolumes | nindent 2 }}
  {{- end }}
{{- end }}
