{{/*
Settings of one service (its ConfigMap's data): the shared config, what the chart wires
(ports, paths, shutdown timing, run mode), then config.extra and the service's own env.
*/}}
{{- define "gas.configData" -}}
{{- $c := .root.Values.config -}}
{{- $data := dict
  "GAS_ENV" $c.env
  "GAS_AWS_REGION" .root.Values.aws.region
  "GAS_NAME_PREFIX" $c.namePrefix
  "GAS_LOG_FORMAT" $c.logFormat
  "GAS_LOG_LEVEL" $c.logLevel
  "GAS_WEB_BASE_URL" $c.webBaseUrl
  "GAS_EMAIL_SENDER" $c.emailSender
  "GAS_FREE_RETENTION_SECONDS" (toString $c.freeRetentionSeconds)
  "GAS_ARCHIVE_STORAGE_CLASS" $c.archiveStorageClass
-}}
{{- /* Every service serves /metrics on its own port, never on the web's public one. */ -}}
{{- $_ := set $data "GAS_METRICS_PORT" "9100" -}}
{{- if include "gas.isWorker" . }}
{{- /* Drain for 15 s less than the pod's grace period, leaving time to release messages. */ -}}
{{- $_ := set $data "GAS_WORKER_SHUTDOWN_GRACE_SECONDS" (toString (max 1 (sub (int .svc.terminationGracePeriodSeconds) 15))) -}}
{{- else }}
{{- $_ := set $data "GAS_WEB_HOST" "0.0.0.0" -}}
{{- $_ := set $data "GAS_WEB_PORT" (toString .svc.port) -}}
{{- /* How many annotation jobs run at once at full scale (pods x jobs per pod): a PENDING
job's estimated start assumes the jobs ahead of it drain this many at a time. */ -}}
{{- $ann := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy .root.Values.services.annotator) -}}
{{- $pods := ternary $ann.autoscaling.maxReplicas $ann.replicas $ann.autoscaling.enabled -}}
{{- $perPod := ternary "1" (dig "GAS_WORKER_CONCURRENCY" "1" (default (dict) $ann.env) | toString) (eq ($ann.mode | default "deployment") "job") -}}
{{- $_ := set $data "GAS_ANNOTATOR_SLOTS" (toString (mul (max 1 (int $pods)) (max 1 (int $perPod)))) -}}
{{- end }}
{{- if include "gas.isJob" . }}
{{- /* One message per Job pod, then exit; an empty queue ends the Job too. */ -}}
{{- $_ := set $data "GAS_WORKER_CONCURRENCY" "1" -}}
{{- $_ := set $data "GAS_WORKER_MAX_MESSAGES" "1" -}}
{{- $_ := set $data "GAS_WORKER_EXIT_WHEN_IDLE" "true" -}}
{{- end }}
{{- if include "gas.hasReference" . }}
{{- $_ := set $data "GAS_REFERENCE_DIR" .svc.reference.mountPath -}}
{{- $_ := set $data "GAS_ANNOTATOR_SCRATCH_DIR" "/tmp/gas-annotator" -}}
{{- end }}
{{- range $key, $value := $c.extra }}
{{- $_ := set $data $key (toString $value) -}}
{{- end }}
{{- range $key, $value := .svc.env }}
{{- $_ := set $data $key (toString $value) -}}
{{- end }}
{{- toYaml $data -}}
{{- end -}}

{{- define "gas.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod of a service: the same for a Deployment and a ScaledJob's Jobs. */}}
{{- define "gas.podTemplate" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $name := include "gas.serviceName" . -}}
{{- $port := ternary "metrics" "http" (eq $svc.kind "worker") -}}
metadata:
  labels:
    {{- include "gas.labels" . | nindent 4 }}
    {{- with $svc.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A settings change rolls the pods (environment variables are read only at start).
    checksum/config: {{ include "gas.configData" . | sha256sum }}
    {{- with $svc.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ $name }}
  # Only pods that mark themselves busy talk to the Kubernetes API. (IRSA's AWS token is a
  # separate projected volume, unaffected by this.)
  automountServiceAccountToken: {{ include "gas.marksPods" . | eq "true" }}
  {{- if include "gas.isJob" . }}
  restartPolicy: Never
  {{- end }}
  terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $svc.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  {{- with $svc.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $svc.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $svc.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $svc.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    {{- $constraint := deepCopy . }}
    {{- /* Without a labelSelector a constraint spreads this service's own pods. */}}
    {{- if not (hasKey $constraint "labelSelector") }}
    {{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "gas.selectorLabels" $ | fromYaml)) }}
    {{- end }}
    - {{- toYaml $constraint | nindent 6 }}
    {{- end }}
  {{- end }}
  {{- if include "gas.hasReference" . }}
  initContainers:
    # Pulls the reference bundle from S3 into the shared volume and verifies every file
    # against the bundle manifest's sha256 (files already there and intact are kept).
    - name: fetch-reference
      image: {{ include "gas.image" . }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command:
        - python
        - -c
        - |
          from pathlib import Path
          from gas_annotator.bundle_store import pull_bundle
          from gas_annotator.settings import AnnotatorSettings
          from gas_core.aws import AwsClients
          from gas_core.logging import configure_logging
          settings = AnnotatorSettings()
          configure_logging(service="annotator-fetch-reference", log_format=settings.log_format)
          pull_bundle(AwsClients(settings).s3, settings.annotator_reference_uri, Path(settings.annotator_reference_cache_dir))
      envFrom:
        - configMapRef:
            name: {{ $name }}
      env:
        - name: GAS_ANNOTATOR_REFERENCE_URI
          value: {{ include "gas.referenceURI" . | quote }}
        - name: GAS_ANNOTATOR_REFERENCE_CACHE_DIR
          value: {{ $svc.reference.mountPath | quote }}
        - name: TMPDIR
          value: /tmp
      resources:
        {{- toYaml $svc.resources | nindent 8 }}
      securityContext:
        {{- include "gas.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: reference
          mountPath: {{ $svc.reference.mountPath }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "gas.image" . }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      ports:
        - name: metrics
          containerPort: 9100
          protocol: TCP
        {{- if ne $svc.kind "worker" }}
        - name: http
          containerPort: {{ $svc.port }}
          protocol: TCP
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ $name }}
      env:
        - name: TMPDIR
          value: /tmp
        {{- if include "gas.marksPods" . }}
        # Downward API: the pod this worker marks busy (gas_core.k8s).
        - name: GAS_POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: GAS_POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- end }}
        {{- range $svc.secretEnv }}
        - name: {{ . }}
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.secrets.existingSecret }}
              key: {{ . }}
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: {{ $port }}
        periodSeconds: {{ $svc.probes.periodSeconds }}
        failureThreshold: {{ $svc.probes.startupFailureThreshold }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: {{ $port }}
        periodSeconds: {{ $svc.probes.periodSeconds }}
        timeoutSeconds: 5
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: {{ $port }}
        periodSeconds: {{ $svc.probes.periodSeconds }}
        timeoutSeconds: 5
        failureThreshold: 3
      {{- if eq $svc.kind "web" }}
      lifecycle:
        preStop:
          # Keep serving while the load balancer deregisters this pod; uvicorn drains after.
          exec:
            command: [python, -c, "import time; time.sleep({{ $svc.preStopSleepSeconds }})"]
      {{- end }}
      resources:
        {{- toYaml $svc.resources | nindent 8 }}
      securityContext:
        {{- include "gas.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if include "gas.hasReference" . }}
        - name: reference
          mountPath: {{ $svc.reference.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    # Scratch space: the root filesystem is read-only.
    - name: tmp
      emptyDir:
        sizeLimit: {{ $svc.scratchSizeLimit }}
    {{- if include "gas.hasReference" . }}
    - name: reference
      {{- if eq $svc.reference.volume "pvc" }}
      persistentVolumeClaim:
        claimName: {{ required "services.annotator.reference.claimName is required with reference.volume=pvc" $svc.reference.claimName }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $svc.reference.sizeLimit }}
      {{- end }}
    {{- end }}
{{- end -}}
