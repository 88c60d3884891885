{{/*
Names, labels and the pieces every pod of the chart shares.
*/}}

{{- define "craton-wf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>", or just the release when it already holds the chart's name. */}}
{{- define "craton-wf.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "craton-wf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "craton-wf.labels" -}}
helm.sh/chart: {{ include "craton-wf.chart" . }}
{{ include "craton-wf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "craton-wf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "craton-wf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "craton-wf.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "craton-wf.kubernetesExecutor" -}}
{{- if eq .Values.config.executor "kubernetes" }}true{{ end }}
{{- end }}

{{- define "craton-wf.runnerServiceAccountName" -}}
{{- default (printf "%s-runner" (include "craton-wf.fullname" .)) .Values.kubernetesExecutor.serviceAccountName }}
{{- end }}

{{/* The Secret the pods read: existingSecret or the chart's own. */}}
{{- define "craton-wf.secretName" -}}
{{- default (include "craton-wf.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The non-secret settings, NAME: value without the CRATON_WF_ prefix. The
ConfigMap holds them; the migration hook Job, which runs before the ConfigMap
exists on a first install, gets them as literal env.
*/}}
{{- define "craton-wf.settings" -}}
{{- $c := .Values.config }}
{{- if not (has $c.executor (list "docker" "swarm" "kubernetes")) }}
{{- fail (printf "config.executor must be docker, swarm or kubernetes, not %q" $c.executor) }}
{{- end }}
EXECUTOR: {{ $c.executor | quote }}
PRODUCTION: {{ $c.production | toString | quote }}
API_HOST: "0.0.0.0"
API_PORT: {{ .Values.api.port | toString | quote }}
PUBLIC_URL: {{ default (printf "%s://%s.%s.svc:%v" (ternary "https" "http" (not (empty .Values.tls.secretName))) (include "craton-wf.fullname" .) .Release.Namespace .Values.service.port) $c.publicUrl | quote }}
DATA_DIR: "/var/lib/craton-wf/data"
IMAGE_PREFIX: {{ $c.imagePrefix | quote }}
REQUIRE_APPROVAL: {{ $c.requireApproval | toString | quote }}
RUNNER_SLOTS: {{ $c.runnerSlots | toString | quote }}
BUILD_SLOTS: {{ $c.buildSlots | toString | quote }}
LEASE_SECONDS: {{ $c.leaseSeconds | toString | quote }}
HEARTBEAT_SECONDS: {{ $c.heartbeatSeconds | toString | quote }}
SHUTDOWN_GRACE_SECONDS: {{ $c.shutdownGraceSeconds | toString | quote }}
{{- with $c.dockerHost }}
DOCKER_BASE_URL: {{ . | quote }}
{{- end }}
{{- with $c.registry }}
REGISTRY: {{ . | quote }}
{{- end }}
{{- with $c.registryUsername }}
REGISTRY_USERNAME: {{ . | quote }}
{{- end }}
{{- if .Values.metrics.runnerPort }}
RUNNER_METRICS_PORT: {{ .Values.metrics.runnerPort | toString | quote }}
{{- end }}
{{- if include "craton-wf.kubernetesExecutor" . }}
KUBERNETES_NAMESPACE: {{ .Release.Namespace | quote }}
KUBERNETES_IN_CLUSTER: "true"
{{- end }}
{{- with .Values.tls.secretName }}
TLS_CERT: "/etc/craton-wf/tls/tls.crt"
TLS_KEY: "/etc/craton-wf/tls/tls.key"
{{- if $.Values.tls.taskCa }}
TLS_TASK_CA: "/etc/craton-wf/tls/ca.crt"
{{- end }}
{{- end }}
{{- if .Values.tls.clientCaSecretName }}
{{- if not .Values.tls.secretName }}
{{- fail "tls.clientCaSecretName needs tls.secretName: mutual TLS is TLS first" }}
{{- end }}
TLS_CLIENT_CA: "/etc/craton-wf/client-ca/ca.crt"
{{- with .Values.tls.clientUserField }}
TLS_CLIENT_USER_FIELD: {{ . | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $c.extra }}
{{ $name | upper }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The secret settings, read from the Secret named by secretName. */}}
{{- define "craton-wf.secretEnv" -}}
{{- $secret := .secretName }}
{{- $keys := .root.Values.secrets.keys -}}
- name: CRATON_WF_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.databaseUrl }}
- name: CRATON_WF_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.secretKey }}
- name: CRATON_WF_REGISTRY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.registryPassword }}
      optional: true
- name: CRATON_WF_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.metricsToken }}
      optional: true
{{- end }}

{{/* Fails the render when the chart would make a Secret without the required values. */}}
{{- define "craton-wf.requireSecrets" -}}
{{- if not .Values.secrets.existingSecret }}
{{- $_ := required "secrets.databaseUrl is required (or name a Secret in secrets.existingSecret)" .Values.secrets.databaseUrl }}
{{- $_ := required "secrets.secretKey is required (craton-wf generate-key makes one; or name a Secret in secrets.existingSecret)" .Values.secrets.secretKey }}
{{- end }}
{{- end }}

{{/* The data of the chart's Secret. */}}
{{- define "craton-wf.secretData" -}}
{{- include "craton-wf.requireSecrets" . -}}
{{ .Values.secrets.keys.databaseUrl }}: {{ .Values.secrets.databaseUrl | b64enc | quote }}
{{ .Values.secrets.keys.secretKey }}: {{ .Values.secrets.secretKey | b64enc | quote }}
{{- with .Values.secrets.registryPassword }}
{{ $.Values.secrets.keys.registryPassword }}: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.metrics.token }}
{{ $.Values.secrets.keys.metricsToken }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* prometheus.io annotations of a pod whose /metrics is on `port`. */}}
{{- define "craton-wf.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | toString | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/* Whether the Prometheus Operator's monitors send the metrics token. */}}
{{- define "craton-wf.sendMetricsToken" -}}
{{- if or .Values.metrics.token .Values.metrics.serviceMonitor.sendToken }}true{{ end }}
{{- end }}

{{/* Writable scratch space under a read-only root filesystem. */}}
{{- define "craton-wf.scratchVolumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
- name: scratch
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
{{- end }}

{{- define "craton-wf.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: scratch
  mountPath: /var/lib/craton-wf
{{- end }}

{{/*
Certificates from Secrets, by pod: "api" gets the API's certificate and key
and the client CA, "runner" only the CA tasks are given (tls.taskCa), every
pod the database's (databaseTls). Files are 0440: the pods' fsGroup, nobody else.
*/}}
{{- define "craton-wf.tlsVolumes" -}}
{{- $tls := .root.Values.tls }}
{{- if and $tls.secretName (or (eq .pod "api") (and $tls.taskCa (eq .pod "runner"))) }}
- name: tls
  secret:
    secretName: {{ $tls.secretName }}
    defaultMode: 0440
    {{- if ne .pod "api" }}
    items:
      - key: ca.crt
        path: ca.crt
    {{- end }}
{{- end }}
{{- if and $tls.clientCaSecretName (eq .pod "api") }}
- name: tls-client-ca
  secret:
    secretName: {{ $tls.clientCaSecretName }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- with .root.Values.databaseTls.secretName }}
- name: db-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "craton-wf.tlsMounts" -}}
{{- $tls := .root.Values.tls }}
{{- if and $tls.secretName (or (eq .pod "api") (and $tls.taskCa (eq .pod "runner"))) }}
- name: tls
  mountPath: /etc/craton-wf/tls
  readOnly: true
{{- end }}
{{- if and $tls.clientCaSecretName (eq .pod "api") }}
- name: tls-client-ca
  mountPath: /etc/craton-wf/client-ca
  readOnly: true
{{- end }}
{{- if .root.Values.databaseTls.secretName }}
- name: db-tls
  mountPath: /etc/craton-wf/db-tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
A probe of the API: an HTTP GET of path, over https when the API serves it;
with mutual TLS a TCP connection (the kubelet has no client certificate).
*/}}
{{- define "craton-wf.apiProbe" -}}
{{- if .root.Values.tls.clientCaSecretName }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
  {{- if .root.Values.tls.secretName }}
  scheme: HTTPS
  {{- end }}
{{- end }}
{{- end }}

{{/* Arguments before the subcommand. */}}
{{- define "craton-wf.globalArgs" -}}
- --log-level
- {{ .Values.logLevel | quote }}
{{- end }}
