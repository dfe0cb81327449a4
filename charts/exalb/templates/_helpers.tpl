{{/* Names and labels shared by every template. */}}

{{- define "exalb.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for namespaced object names: "exalb" for a release named exalb. */}}
{{- define "exalb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "exalb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of one component: include "exalb.labels" (list $ "announcer") */}}
{{- define "exalb.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "exalb.chart" $root }}
{{ include "exalb.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: exalb
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end -}}

{{- define "exalb.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "exalb.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/*
ServiceAccount names. They are fixed because the RBAC files in rbac/ (the single source of
truth, also applied by the test bed) bind exactly these names.
*/}}
{{- define "exalb.serviceAccount.allocator" -}}exalb-allocator{{- end -}}
{{- define "exalb.serviceAccount.announcer" -}}exalb-announcer{{- end -}}

{{/* Where the BGPPeers' password Secrets live (the announcer's default when unset). */}}
{{- define "exalb.bgpSecretsNamespace" -}}
{{- .Values.bgpSecretsNamespace | default (printf "%s-bgp-secrets" .Release.Namespace) -}}
{{- end -}}

{{- define "exalb.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* A probe on a process's own health endpoint: include "exalb.probe" (list "/readyz" port settings) */}}
{{- define "exalb.probe" -}}
httpGet:
  path: {{ index . 0 }}
  port: {{ index . 1 }}
{{ toYaml (index . 2) }}
{{- end -}}

{{/*
The allocator container, the same in both modes: as a sidecar of the announcer pod and in
its own Deployment.
*/}}
{{- define "exalb.allocatorContainer" -}}
- name: allocator
  image: {{ include "exalb.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [exalb-allocator]
  args:
    - --namespace={{ .Release.Namespace }}
    - --metrics-bind=0.0.0.0:{{ .Values.allocator.metricsPort }}
    - --lease-duration={{ .Values.allocator.lease.duration }}
    - --renew-deadline={{ .Values.allocator.lease.renewDeadline }}
    - --retry-period={{ .Values.allocator.lease.retryPeriod }}
    - --write-workers={{ .Values.allocator.writeWorkers }}
    - --owner-service-account={{ include "exalb.serviceAccount.allocator" . }}
    - --log-level={{ .Values.allocator.logLevel }}
    - --log-format={{ .Values.logFormat }}
    {{- with .Values.loadBalancerClass }}
    - --load-balancer-class={{ . }}
    {{- end }}
    {{- range .Values.allocator.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: POD_NAME  # the Lease holder identity
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: alloc-metrics
      containerPort: {{ .Values.allocator.metricsPort }}
      protocol: TCP
  livenessProbe:
    {{- include "exalb.probe" (list "/healthz" "alloc-metrics" .Values.allocator.livenessProbe) | nindent 4 }}
  readinessProbe:
    {{- include "exalb.probe" (list "/readyz" "alloc-metrics" .Values.allocator.readinessProbe) | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.allocator.resources | nindent 4 }}
{{- end -}}
