{{/* Names: the release name, trimmed to leave room for the longest suffix ("-target-<zone>"). */}}
{{- define "csi-scst.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "csi-scst.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "csi-scst.labels" -}}
helm.sh/chart: {{ include "csi-scst.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: csi-scst
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "node"). */}}
{{- define "csi-scst.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "csi-scst.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "csi-scst.sidecarImage" -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}

{{/* The kubelet's plugin directory of this driver, where the node plugin's socket lives. */}}
{{- define "csi-scst.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.node.kubeletDir) .Values.driverName -}}
{{- end -}}

{{/* Label selector (text) the controller uses to find the target-engine pods of this release. */}}
{{- define "csi-scst.targetSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=target" .Chart.Name .Release.Name -}}
{{- end -}}

{{/* Names of the two TLS Secrets (generated or the operator's). */}}
{{- define "csi-scst.tlsSecret.controller" -}}
{{- default (printf "%s-engine-tls-controller" (include "csi-scst.fullname" .)) .Values.tls.existingSecrets.controller -}}
{{- end -}}
{{- define "csi-scst.tlsSecret.target" -}}
{{- default (printf "%s-engine-tls-target" (include "csi-scst.fullname" .)) .Values.tls.existingSecrets.target -}}
{{- end -}}

{{/*
The groups the node plugin and the target engine run in: one group without a zone, or one group per zone
(its own DaemonSet selecting that zone's nodes and passing --zone).
*/}}
{{- define "csi-scst.zoneGroups" -}}
{{- if .Values.topology.enabled -}}
{{- range .Values.topology.zones }}
- suffix: {{ printf "-%s" (. | lower | replace "." "-" | replace "_" "-") | quote }}
  zone: {{ . | quote }}
{{- end }}
{{- else -}}
- suffix: ""
  zone: ""
{{- end -}}
{{- end -}}

{{/* Whether the CSIDriver advertises storage capacity: GetCapacity per pool and zone needs zones. */}}
{{- define "csi-scst.storageCapacity" -}}
{{- if and .Values.topology.enabled .Values.controller.capacity.enabled -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Flags every csi-scst role takes. */}}
{{- define "csi-scst.commonArgs" -}}
- --driver-name={{ .Values.driverName }}
- --instance-id={{ .Values.instanceId }}
- --iqn-prefix={{ .Values.iqnPrefix }}
- --log-format={{ .Values.logFormat }}
- --log-level={{ .Values.logLevel }}
{{- end -}}
