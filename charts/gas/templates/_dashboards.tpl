{{/*
Grafana dashboards, written as compact panel lists (title, unit, PromQL targets) and turned
into dashboard JSON by "gas.grafanaDashboard". `$namespace` and `$__rate_interval` are Grafana
variables; queue names and the CloudWatch metric names come from values (monitoring.cloudwatch).
*/}}

{{/* The dashboard JSON from a spec: dict root, uid, title, panels (list of title/unit/targets). */}}
{{- define "gas.grafanaDashboard" -}}
{{- $root := .root -}}
{{- $ds := dict "type" "prometheus" "uid" "${datasource}" -}}
{{- $panels := list -}}
{{- $pos := dict "x" 0 "y" 0 -}}
{{- range $i, $p := .panels -}}
{{- $w := int (default 12 $p.w) -}}
{{- if gt (add $pos.x $w) 24 -}}
{{- $_ := set $pos "x" 0 -}}
{{- $_ := set $pos "y" (add $pos.y 8) -}}
{{- end -}}
{{- $targets := list -}}
{{- range $j, $t := $p.targets -}}
{{- $targets = append $targets (dict "refId" (substr $j (add1 $j | int) "ABCDEFGHIJ") "datasource" $ds "expr" $t.expr "legendFormat" (default "__auto" $t.legend)) -}}
{{- end -}}
{{- $panel := dict
  "id" (add1 $i)
  "type" (default "timeseries" $p.type)
  "title" $p.title
  "description" (default "" $p.description)
  "datasource" $ds
  "gridPos" (dict "h" 8 "w" $w "x" $pos.x "y" $pos.y)
  "fieldConfig" (dict "defaults" (dict "unit" (default "short" $p.unit)) "overrides" list)
  "options" (dict "legend" (dict "displayMode" "list" "placement" "bottom" "showLegend" true) "tooltip" (dict "mode" "multi" "sort" "desc"))
  "targets" $targets
-}}
{{- $panels = append $panels $panel -}}
{{- $_ := set $pos "x" (add $pos.x $w) -}}
{{- end -}}
{{- $namespace := $root.Release.Namespace -}}
{{- $dashboard := dict
  "uid" (printf "%s-%s" .uid $namespace | trunc 40 | trimSuffix "-")
  "title" (printf "%s (%s)" .title $namespace)
  "tags" (list "gas")
  "timezone" "browser"
  "editable" true
  "schemaVersion" 39
  "version" 1
  "refresh" "30s"
  "time" (dict "from" "now-6h" "to" "now")
  "links" (list (dict "title" "GAS runbook" "type" "link" "url" $root.Values.monitoring.prometheusRule.runbookUrl "targetBlank" true))
  "templating" (dict "list" (list
      (dict "name" "datasource" "label" "Data source" "type" "datasource" "query" "prometheus" "current" dict)
      (dict "name" "namespace" "label" "Namespace" "type" "custom" "query" $namespace "current" (dict "text" $namespace "value" $namespace) "options" (list (dict "text" $namespace "value" $namespace "selected" true)))))
  "panels" $panels
-}}
{{- toPrettyJson $dashboard -}}
{{- end -}}

{{/* Queue panels of one queue, from CloudWatch through the exporter. ctx: root, queue (name). */}}
{{- define "gas.dashboard.queuePanels" -}}
{{- $cw := .root.Values.monitoring.cloudwatch -}}
- title: Queue depth ({{ .queue }})
  description: Messages waiting (visible) and being handled (in flight), from CloudWatch.
  targets:
    - expr: max({{ $cw.visibleMetric }}{ {{- $cw.queueLabel }}="{{ .queue }}"})
      legend: visible
    - expr: max({{ $cw.inFlightMetric }}{ {{- $cw.queueLabel }}="{{ .queue }}"})
      legend: in flight
- title: Dead-letter queue depth ({{ .queue }}-dlq)
  description: Messages that failed 5 receives or could not be parsed. See the runbook, "Dead-letter queues".
  targets:
    - expr: max({{ $cw.visibleMetric }}{ {{- $cw.queueLabel }}="{{ .queue }}-dlq"})
      legend: dead letters
- title: Oldest message age ({{ .queue }})
  unit: s
  targets:
    - expr: max({{ $cw.oldestAgeMetric }}{ {{- $cw.queueLabel }}="{{ .queue }}"})
      legend: oldest message
{{- end -}}

{{/* Panels every queue worker has (gas_core.worker metrics). ctx: root, name. */}}
{{- define "gas.dashboard.workerPanels" -}}
{{- $sel := printf "namespace=\"$namespace\",service=\"%s\"" .name -}}
- title: Messages handled per second, by outcome
  targets:
    - expr: sum by (outcome) (rate(gas_messages_total{ {{- $sel -}} }[$__rate_interval]))
      legend: '{{`{{outcome}}`}}'
- title: Message handling time
  unit: s
  targets:
    - expr: histogram_quantile(0.5, sum by (le) (rate(gas_message_seconds_bucket{ {{- $sel -}} }[$__rate_interval])))
      legend: p50
    - expr: histogram_quantile(0.95, sum by (le) (rate(gas_message_seconds_bucket{ {{- $sel -}} }[$__rate_interval])))
      legend: p95
- title: Messages in flight
  targets:
    - expr: sum(gas_messages_in_flight{ {{- $sel -}} })
      legend: in flight
- title: Replicas (pods receiving)
  targets:
    - expr: count(gas_worker_last_poll_timestamp_seconds{ {{- $sel -}} })
      legend: pods
- title: Seconds since the last receive (slowest pod)
  description: Above ~80 s a pod's receive loop is stuck; its liveness probe restarts it.
  unit: s
  targets:
    - expr: max(time() - gas_worker_last_poll_timestamp_seconds{ {{- $sel -}} })
      legend: slowest pod
{{- end -}}

{{/* Panels of a service's own metrics, by service name. ctx: root, name. */}}
{{- define "gas.dashboard.servicePanels" -}}
{{- $ns := "namespace=\"$namespace\"" -}}
{{- if eq .name "annotator" }}
- title: Annotation jobs finished per minute, by outcome
  targets:
    - expr: sum by (outcome) (rate(gas_annotator_jobs_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{outcome}}`}}'
- title: Variants annotated per second
  targets:
    - expr: sum(rate(gas_annotator_variants_total{ {{- $ns -}} }[$__rate_interval]))
      legend: variants/s
- title: Job duration (lease to completion)
  unit: s
  targets:
    - expr: histogram_quantile(0.5, sum by (le) (rate(gas_annotator_job_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p50
    - expr: histogram_quantile(0.95, sum by (le) (rate(gas_annotator_job_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p95
- title: Stage duration p95, by stage
  unit: s
  targets:
    - expr: histogram_quantile(0.95, sum by (le, stage) (rate(gas_annotator_stage_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: '{{`{{stage}}`}}'
{{- else if eq .name "archiver" }}
- title: Archive messages per minute, by outcome
  targets:
    - expr: sum by (outcome) (rate(gas_archiver_jobs_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{outcome}}`}}'
- title: Bytes archived per second
  unit: Bps
  targets:
    - expr: sum(rate(gas_archiver_archived_bytes_total{ {{- $ns -}} }[$__rate_interval]))
      legend: archived
- title: Objects archived and hot copies deleted per minute
  targets:
    - expr: sum(rate(gas_archiver_objects_archived_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: archived
    - expr: sum(rate(gas_archiver_hot_objects_deleted_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: hot deleted
{{- else if eq .name "restorer" }}
- title: Jobs acted on after tier changes, per minute, by action
  targets:
    - expr: sum by (action) (rate(gas_restorer_jobs_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{action}}`}}'
- title: Restores requested per minute, by retrieval tier
  targets:
    - expr: sum by (tier) (rate(gas_restorer_restores_requested_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{tier}}`}}'
    - expr: sum(rate(gas_restorer_expedited_refused_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: expedited refused
- title: Bytes requested for restore per second
  unit: Bps
  targets:
    - expr: sum(rate(gas_restorer_restore_requested_bytes_total{ {{- $ns -}} }[$__rate_interval]))
      legend: requested
{{- else if eq .name "thawer" }}
- title: Restore notifications per minute, by outcome
  targets:
    - expr: sum by (outcome) (rate(gas_thawer_jobs_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{outcome}}`}}'
    - expr: sum(rate(gas_thawer_restores_requested_again_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: expired restores requested again
- title: Restore request to hot again
  unit: s
  targets:
    - expr: histogram_quantile(0.5, sum by (le) (rate(gas_thawer_restore_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p50
    - expr: histogram_quantile(0.95, sum by (le) (rate(gas_thawer_restore_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p95
- title: Bytes thawed per second
  unit: Bps
  targets:
    - expr: sum(rate(gas_thawer_thawed_bytes_total{ {{- $ns -}} }[$__rate_interval]))
      legend: thawed
{{- else if eq .name "notifier" }}
- title: Notifications per minute, by kind and outcome
  targets:
    - expr: sum by (kind, outcome) (rate(gas_notifier_emails_total{ {{- $ns -}} }[$__rate_interval])) * 60
      legend: '{{`{{kind}} {{outcome}}`}}'
{{- end }}
{{- end -}}

{{- define "gas.dashboard.webPanels" -}}
{{- $ns := "namespace=\"$namespace\"" -}}
- title: Requests per second, by status
  targets:
    - expr: sum by (status) (rate(gas_http_requests_total{ {{- $ns -}} }[$__rate_interval]))
      legend: '{{`{{status}}`}}'
- title: Share of 5xx responses
  unit: percentunit
  targets:
    - expr: sum(rate(gas_http_requests_total{ {{- $ns -}} ,status=~"5.."}[$__rate_interval])) / sum(rate(gas_http_requests_total{ {{- $ns -}} }[$__rate_interval]))
      legend: 5xx
- title: Latency
  unit: s
  targets:
    - expr: histogram_quantile(0.5, sum by (le) (rate(gas_http_request_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p50
    - expr: histogram_quantile(0.95, sum by (le) (rate(gas_http_request_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p95
    - expr: histogram_quantile(0.99, sum by (le) (rate(gas_http_request_seconds_bucket{ {{- $ns -}} }[$__rate_interval])))
      legend: p99
- title: Slowest routes (p95)
  unit: s
  targets:
    - expr: topk(10, histogram_quantile(0.95, sum by (le, method, route) (rate(gas_http_request_seconds_bucket{ {{- $ns -}} }[$__rate_interval]))))
      legend: '{{`{{method}} {{route}}`}}'
- title: Replicas (pods serving)
  targets:
    - expr: count(count by (pod) (gas_http_request_seconds_count{ {{- $ns -}} }))
      legend: pods
{{- end -}}

{{/* Overview of the whole system. ctx: root, queues (list of queue names). */}}
{{- define "gas.dashboard.overviewPanels" -}}
{{- $cw := .root.Values.monitoring.cloudwatch -}}
{{- $ns := "namespace=\"$namespace\"" -}}
{{- $queues := printf "(%s)" (join "|" .queues) -}}
{{- $dlqs := printf "(%s)-dlq" (join "|" .queues) -}}
- title: Annotation jobs finished per minute
  targets:
    - expr: sum by (outcome) (rate(gas_annotator_jobs_total{ {{- $ns -}} ,outcome=~"completed|failed"}[$__rate_interval])) * 60
      legend: '{{`{{outcome}}`}}'
- title: Job success ratio (1 h)
  unit: percentunit
  targets:
    - expr: sum(rate(gas_annotator_jobs_total{ {{- $ns -}} ,outcome="completed"}[1h])) / sum(rate(gas_annotator_jobs_total{ {{- $ns -}} ,outcome=~"completed|failed"}[1h]))
      legend: completed / finished
- title: End-to-end latency (submit to result)
  unit: s
  targets:
    - expr: histogram_quantile(0.5, sum by (le) (rate(gas_job_end_to_end_seconds_bucket{ {{- $ns -}} ,outcome="completed"}[$__rate_interval])))
      legend: p50
    - expr: histogram_quantile(0.95, sum by (le) (rate(gas_job_end_to_end_seconds_bucket{ {{- $ns -}} ,outcome="completed"}[$__rate_interval])))
      legend: p95
- title: Waiting before annotation (oldest message on the annotator queue)
  unit: s
  targets:
    - expr: max({{ $cw.oldestAgeMetric }}{ {{- $cw.queueLabel }}="{{ .root.Values.config.namePrefix }}-annotator"})
      legend: oldest message
- title: Queue depths (visible messages)
  targets:
    - expr: max by ({{ $cw.queueLabel }}) ({{ $cw.visibleMetric }}{ {{- $cw.queueLabel }}=~"{{ $queues }}"})
      legend: '{{ printf "{{%s}}" $cw.queueLabel }}'
- title: Dead-letter queue depths
  targets:
    - expr: max by ({{ $cw.queueLabel }}) ({{ $cw.visibleMetric }}{ {{- $cw.queueLabel }}=~"{{ $dlqs }}"})
      legend: '{{ printf "{{%s}}" $cw.queueLabel }}'
- title: Replicas by service
  targets:
    - expr: count by (service) (gas_worker_last_poll_timestamp_seconds{ {{- $ns -}} })
      legend: '{{`{{service}}`}}'
    - expr: count(count by (pod) (gas_http_request_seconds_count{ {{- $ns -}} }))
      legend: web
- title: Messages handled per second, by service
  targets:
    - expr: sum by (service) (rate(gas_messages_total{ {{- $ns -}} }[$__rate_interval]))
      legend: '{{`{{service}}`}}'
{{- end -}}
