{{/* Name of the Homeserver: the operator derives `<name>-<service>` Services from it. */}}
{{- define "mzchat.name" -}}
{{- $name := .Values.fullnameOverride | default .Release.Name -}}
{{- if gt (len $name) 47 -}}
{{- fail (printf "the homeserver name %q is longer than 47 characters: Service names <name>-federation-sync must fit 63; set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "mzchat.version" -}}
{{- .Values.version | default .Chart.AppVersion -}}
{{- end -}}

{{- define "mzchat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: mzchat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "mzchat.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mzchat
{{- end -}}

{{/*
Where a credential lives. Arguments: root (.), section (its values), suffix (name of the
Secret the chart makes), inline (whether inline values were given), what (for messages),
required (fail when neither is given). Returns the Secret's name, or "" when there is none.
*/}}
{{- define "mzchat.secretName" -}}
{{- $s := .section -}}
{{- if and $s.existingSecret .inline -}}
{{- fail (printf "%s: set either the inline value or existingSecret, not both" .what) -}}
{{- else if $s.existingSecret -}}
{{- $s.existingSecret -}}
{{- else if .inline -}}
{{- printf "%s-%s" (include "mzchat.name" .root) .suffix -}}
{{- else if .required -}}
{{- fail (printf "%s is required: set it inline or name an existingSecret (see values.yaml)" .what) -}}
{{- end -}}
{{- end -}}

{{- define "mzchat.databaseSecret" -}}
{{- $d := .Values.database -}}
{{- $inline := ternary $d.urls $d.url (eq $d.layout "DatabasePerService") -}}
{{- include "mzchat.secretName" (dict "root" . "section" $d "suffix" "database" "inline" (not (empty $inline)) "what" (ternary "database.urls" "database.url" (eq $d.layout "DatabasePerService")) "required" true) -}}
{{- end -}}

{{- define "mzchat.natsSecret" -}}
{{- include "mzchat.secretName" (dict "root" . "section" .Values.nats "suffix" "nats" "inline" (not (empty .Values.nats.credentials)) "what" "nats.credentials" "required" false) -}}
{{- end -}}

{{- define "mzchat.objectStoreSecret" -}}
{{- $o := .Values.objectStore -}}
{{- $inline := or $o.accessKeyId $o.secretAccessKey -}}
{{- if and $inline (not (and $o.accessKeyId $o.secretAccessKey)) -}}
{{- fail "objectStore: set both accessKeyId and secretAccessKey" -}}
{{- end -}}
{{- /* mzchatd reads static keys only: no ambient credentials (IAM roles) yet. */}}
{{- include "mzchat.secretName" (dict "root" . "section" $o "suffix" "object-store" "inline" (not (empty $inline)) "what" "objectStore credentials (accessKeyId and secretAccessKey)" "required" true) -}}
{{- end -}}

{{- define "mzchat.keysSecret" -}}
{{- include "mzchat.secretName" (dict "root" . "section" .Values.keys "suffix" "keys" "inline" (not (empty .Values.keys.internalToken)) "what" "keys.internalToken" "required" false) -}}
{{- end -}}

{{- define "mzchat.registrationSecret" -}}
{{- $r := .Values.registration -}}
{{- $token := eq $r.policy "Token" -}}
{{- if and (not $token) (or $r.tokens $r.existingSecret) -}}
{{- fail (printf "registration: tokens are only used with policy Token (policy is %s)" $r.policy) -}}
{{- end -}}
{{- include "mzchat.secretName" (dict "root" . "section" $r "suffix" "registration" "inline" (not (empty $r.tokens)) "what" "registration.tokens (policy Token)" "required" $token) -}}
{{- end -}}

{{- define "mzchat.fcmSecret" -}}
{{- include "mzchat.secretName" (dict "root" . "section" .Values.push "suffix" "fcm" "inline" (not (empty .Values.push.fcmCredentials)) "what" "push.fcmCredentials" "required" false) -}}
{{- end -}}

{{/* Keys each Secret the chart makes uses; existing Secrets name theirs in values. */}}
{{- define "mzchat.secretKey" -}}
{{- $s := .section -}}
{{- if $s.existingSecret }}{{ $s.existingSecretKey }}{{ else }}{{ .default }}{{ end -}}
{{- end -}}

{{/* Pod hardening shared by the test pods. */}}
{{- define "mzchat.testSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "mzchat.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}
