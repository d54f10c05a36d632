{{/*
One named template per kind of object, each taking a service context (dict root, name, svc).
templates/services.yaml ranges over the services and picks the kinds each one needs.
*/}}

{{- define "gas.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
data:
  {{- include "gas.configData" . | nindent 2 }}
{{- end -}}

{{- define "gas.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
  {{- $annotations := deepCopy (default dict .svc.serviceAccount.annotations) }}
  {{- with .svc.serviceAccount.roleArn }}
  {{- $_ := set $annotations "eks.amazonaws.com/role-arn" . }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ include "gas.marksPods" . | eq "true" }}
{{- end -}}

{{/* Web: its HTTP port (what the Ingress routes) and the metrics port. Workers: the metrics
port. The ServiceMonitor scrapes only the metrics port. */}}
{{- define "gas.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  {{- if eq .svc.kind "web" }}
  type: {{ .svc.service.type }}
  ports:
    - name: http
      port: {{ .svc.service.port }}
      targetPort: http
      protocol: TCP
    - name: metrics
      port: 9100
      targetPort: metrics
      protocol: TCP
  {{- else }}
  type: ClusterIP
  clusterIP: None
  ports:
    - name: metrics
      port: 9100
      targetPort: metrics
      protocol: TCP
  {{- end }}
  selector:
    {{- include "gas.selectorLabels" . | nindent 4 }}
{{- end -}}

{{- define "gas.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  {{- if not .svc.autoscaling.enabled }}
  replicas: {{ .svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "gas.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      {{- if eq .svc.kind "web" }}
      # Never below the current capacity during a rollout.
      maxUnavailable: 0
      maxSurge: 25%
      {{- else }}
      maxUnavailable: 1
      maxSurge: 1
      {{- end }}
  template:
    {{- include "gas.podTemplate" . | nindent 4 }}
{{- end -}}

{{/* Job mode (annotator): KEDA starts one Job per queued message; each pod handles one and exits. */}}
{{- define "gas.scaledJob" -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  jobTargetRef:
    parallelism: 1
    completions: 1
    # Retries belong to SQS (redelivery, then the DLQ after 5 receives), not to the Job.
    backoffLimit: 0
    activeDeadlineSeconds: {{ .svc.job.activeDeadlineSeconds }}
    ttlSecondsAfterFinished: {{ .svc.job.ttlSecondsAfterFinished }}
    template:
      {{- include "gas.podTemplate" . | nindent 6 }}
  pollingInterval: {{ .svc.autoscaling.pollingInterval }}
  minReplicaCount: {{ .svc.autoscaling.minReplicas }}
  maxReplicaCount: {{ .svc.autoscaling.maxReplicas }}
  successfulJobsHistoryLimit: {{ .svc.job.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .svc.job.failedJobsHistoryLimit }}
  scalingStrategy:
    # The trigger counts only visible messages (scaleOnInFlight "false"): a message being
    # handled is invisible, so new Jobs = visible messages, capped by maxReplicaCount.
    strategy: accurate
  triggers:
    {{- include "gas.sqsTrigger" (merge (dict "inFlight" false) .) | nindent 4 }}
{{- end -}}

{{- define "gas.sqsTrigger" -}}
- type: aws-sqs-queue
  authenticationRef:
    name: {{ include "gas.fullname" .root }}-aws
  metadata:
    queueURL: {{ include "gas.queueURL" . | quote }}
    awsRegion: {{ .root.Values.aws.region | quote }}
    queueLength: {{ .svc.autoscaling.queueLength | toString | quote }}
    activationQueueLength: {{ .svc.autoscaling.activationQueueLength | toString | quote }}
    scaleOnInFlight: {{ .inFlight | toString | quote }}
{{- end -}}

{{- define "gas.scaledObject" -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "gas.serviceName" . }}
  minReplicaCount: {{ .svc.autoscaling.minReplicas }}
  maxReplicaCount: {{ .svc.autoscaling.maxReplicas }}
  pollingInterval: {{ .svc.autoscaling.pollingInterval }}
  cooldownPeriod: {{ .svc.autoscaling.cooldownPeriod }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          # Scale in slowly, one pod a minute, after demand has stayed low: busy pods are
          # protected by their deletion cost, and in-flight messages count as demand.
          stabilizationWindowSeconds: {{ .svc.autoscaling.scaleDownStabilizationSeconds }}
          policies:
            - type: Pods
              value: 1
              periodSeconds: 60
  triggers:
    {{- include "gas.sqsTrigger" (merge (dict "inFlight" .root.Values.keda.scaleOnInFlight) .) | nindent 4 }}
{{- end -}}

{{/* CPU autoscaling: the web app, and workers when KEDA is disabled (at least one replica). */}}
{{- define "gas.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "gas.serviceName" . }}
  minReplicas: {{ max 1 (int .svc.autoscaling.minReplicas) }}
  maxReplicas: {{ max 1 (int .svc.autoscaling.maxReplicas) }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .svc.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: {{ .svc.autoscaling.scaleDownStabilizationSeconds }}
      policies:
        - type: Pods
          value: 1
          periodSeconds: 60
{{- end -}}

{{- define "gas.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .svc.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "gas.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "gas.ingress" -}}
{{- $ingress := .svc.ingress -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
  {{- with $ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  ingressClassName: {{ $ingress.className }}
  {{- if $ingress.tls.enabled }}
  tls:
    - hosts:
        - {{ $ingress.host | quote }}
      {{- with $ingress.tls.secretName }}
      secretName: {{ . }}
      {{- end }}
  {{- end }}
  rules:
    - host: {{ $ingress.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "gas.serviceName" . }}
                port:
                  name: http
{{- end -}}

{{/* Web: http from the ingress controller (and Prometheus, whose probes may use it). Every
service: metrics from Prometheus only. */}}
{{- define "gas.networkPolicy" -}}
{{- $np := .root.Values.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "gas.serviceName" . }}
  labels:
    {{- include "gas.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "gas.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    {{- if eq .svc.kind "web" }}
    - from:
        {{- toYaml (concat $np.webFrom $np.metricsFrom) | nindent 8 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    - from:
        {{- toYaml $np.metricsFrom | nindent 8 }}
      ports:
        - port: metrics
          protocol: TCP
{{- end -}}

{{/*
A worker may read and patch pods in its namespace, to set its own pod's deletion cost.
RBAC cannot name "the caller's own pod" (resourceNames are fixed when the Role is written and
pod names are generated), so the Role covers the namespace's pods; see docs/operations.md.
*/}}
{{- define "gas.podPatcherRole" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "gas.serviceName" . }}-pod-deletion-cost
  labels:
    {{- include "gas.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, patch]
{{- end -}}

{{- define "gas.podPatcherRoleBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "gas.serviceName" . }}-pod-deletion-cost
  labels:
    {{- include "gas.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "gas.serviceName" . }}-pod-deletion-cost
subjects:
  - kind: ServiceAccount
    name: {{ include "gas.serviceName" . }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}
