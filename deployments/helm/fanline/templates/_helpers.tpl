{{- define "fanline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fanline.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fanline.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fanline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "fanline.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "fanline.fullname" .)) -}}
{{- end -}}

{{/* The secrets a node reads from the Secret named by the argument (keys it lacks are left unset). */}}
{{- define "fanline.secretEnv" -}}
- name: FANLINE_AUTH_JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: jwt-secret}
- name: FANLINE_MINIO_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: minio-secret-key, optional: true}
- name: FANLINE_CASSANDRA_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: cassandra-password, optional: true}
- name: FANLINE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: redis-password, optional: true}
{{- end -}}

{{/* The chart's Secret's data (with no existingSecret). */}}
{{- define "fanline.secretData" -}}
jwt-secret: {{ required "secrets.jwtSecret (32+ random bytes) or secrets.existingSecret is required" .Values.secrets.jwtSecret | quote }}
{{- with .Values.secrets.minioSecretKey }}
minio-secret-key: {{ . | quote }}
{{- end }}
{{- with .Values.secrets.cassandraPassword }}
cassandra-password: {{ . | quote }}
{{- end }}
{{- with .Values.secrets.redisPassword }}
redis-password: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The volumes of a node; the argument names its ConfigMap. */}}
{{- define "fanline.volumes" -}}
- name: config
  configMap:
    name: {{ . }}
{{- end -}}

{{- define "fanline.volumeMounts" -}}
- name: config
  mountPath: /etc/fanline/fanline.yaml
  subPath: fanline.yaml
  readOnly: true
{{- end -}}

{{- define "fanline.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{- define "fanline.securityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
