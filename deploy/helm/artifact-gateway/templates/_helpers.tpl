{{/*
Names and labels.
*/}}
{{- define "artifact-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "artifact-gateway.fullname" -}}
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

{{- define "artifact-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "artifact-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "artifact-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "artifact-gateway.labels" -}}
helm.sh/chart: {{ include "artifact-gateway.chart" . }}
{{ include "artifact-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "artifact-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "artifact-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "artifact-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Ports: the container listens on 8443 with TLS, 8080 without; the Service defaults to 443 / 80.
*/}}
{{- define "artifact-gateway.containerPort" -}}
{{- if .Values.tls.enabled }}8443{{ else }}8080{{ end }}
{{- end }}

{{- define "artifact-gateway.servicePort" -}}
{{- if .Values.service.port }}{{ .Values.service.port }}{{ else if .Values.tls.enabled }}443{{ else }}80{{ end }}
{{- end }}

{{- define "artifact-gateway.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{- define "artifact-gateway.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "artifact-gateway.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{- define "artifact-gateway.pvcName" -}}
{{- default (printf "%s-data" (include "artifact-gateway.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Where the pod finds its files.
*/}}
{{- define "artifact-gateway.configDir" -}}/etc/artifact-gateway{{- end }}
{{- define "artifact-gateway.tokenDir" -}}/etc/artifact-gateway/tokens{{- end }}
{{- define "artifact-gateway.tlsDir" -}}/etc/artifact-gateway/tls{{- end }}
{{- define "artifact-gateway.signingDir" -}}/etc/artifact-gateway/signing{{- end }}

{{/*
TOML rendering. A key is written bare when TOML allows it, quoted otherwise; values by kind:
maps become inline tables ({ env = "X" } secrets, hdfs `config`), lists arrays, numbers integers
(Helm reads every YAML number as a float), everything else a JSON-escaped string, which is also
a valid TOML basic string.
*/}}
{{- define "artifact-gateway.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "artifact-gateway.tomlValue" -}}
{{- if kindIs "map" . -}}
{ {{- $first := true }}{{ range $k, $v := . }}{{ if not (kindIs "invalid" $v) }}{{ if not $first }}, {{ end }}{{ $first = false }}{{ include "artifact-gateway.tomlKey" $k }} = {{ include "artifact-gateway.tomlValue" $v }}{{ end }}{{ end -}} }
{{- else if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "artifact-gateway.tomlValue" $v }}{{ end }}]
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{ int64 . }}
{{- else -}}
{{ toJson (toString .) }}
{{- end -}}
{{- end }}

{{/* The key = value lines of one table; nil values are left out. Input: a map. */}}
{{- define "artifact-gateway.tomlPairs" -}}
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{ include "artifact-gateway.tomlKey" $k }} = {{ include "artifact-gateway.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}

{{/*
config.toml, rendered from values (see config/example.toml for every key).
*/}}
{{- define "artifact-gateway.configToml" -}}
# Rendered by the artifact-gateway Helm chart from its values; edit the values, not this file.
listen = "0.0.0.0:{{ include "artifact-gateway.containerPort" . }}"
{{- if .Values.tls.enabled }}

[tls]
cert_file = "{{ include "artifact-gateway.tlsDir" . }}/tls.crt"
key_file = "{{ include "artifact-gateway.tlsDir" . }}/tls.key"
{{- end }}
{{- with .Values.config.limits }}

[limits]
{{- include "artifact-gateway.tomlPairs" . }}
{{- end }}
{{- with .Values.config.log }}

[log]
{{- include "artifact-gateway.tomlPairs" . }}
{{- end }}
{{- if not .Values.mounts }}
{{- fail "mounts: at least one mount is needed" }}
{{- end }}
{{- range $m := .Values.mounts }}

[[mounts]]
name = {{ include "artifact-gateway.tomlValue" (required "every mount needs a name" $m.name) }}
url = {{ include "artifact-gateway.tomlValue" (required (printf "mount %s needs a url" $m.name) $m.url) }}
{{- include "artifact-gateway.tomlPairs" (omit $m "name" "url" "s3" "oss" "hdfs") }}
{{- range $kind := list "s3" "oss" "hdfs" }}
{{- with index $m $kind }}
[mounts.{{ $kind }}]
{{- include "artifact-gateway.tomlPairs" . }}
{{- end }}
{{- end }}
{{- end }}
{{- range $t := .Values.tokens }}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*$" (toString $t.name)) }}
{{- fail (printf "tokens: name %q must be letters, digits, '.', '_' or '-' (it is a file name)" (toString $t.name)) }}
{{- end }}

[[tokens]]
name = {{ include "artifact-gateway.tomlValue" $t.name }}
secret = { file = "{{ include "artifact-gateway.tokenDir" $ }}/{{ $t.name }}" }
scopes = {{ include "artifact-gateway.tomlValue" (required (printf "token %s needs scopes" $t.name) $t.scopes) }}
mounts = {{ include "artifact-gateway.tomlValue" (default (list "*") $t.mounts) }}
{{- end }}
{{- with .Values.signing }}
{{- if .keys }}

# Signed URLs: the first key signs, every key verifies (rotation).
[signing]
keys = [
{{- range $i, $k := .keys }}
{{- if not (regexMatch "^[A-Za-z0-9._-]+$" (toString $k.id)) }}
{{- fail (printf "signing.keys: id %q must be letters, digits, '.', '_' or '-' (it is a file name)" (toString $k.id)) }}
{{- end }}
{{- $_ := required (printf "signing.keys[%s].existingSecret is required" $k.id) $k.existingSecret }}
  { id = {{ include "artifact-gateway.tomlValue" $k.id }}, secret = { file = "{{ include "artifact-gateway.signingDir" $ }}/{{ $k.id }}" } },
{{- end }}
]
{{- with .maxExpires }}
max_expires = {{ include "artifact-gateway.tomlValue" . }}
{{- end }}
{{- end }}
{{- end }}
{{ end }}
