# The evaluator's breach lines (`"alert": "performance_breach"`, with the model) as a log-based metric, and
# an alert on it and on failed retrain executions.
resource "google_logging_metric" "breaches" {
  name        = "${var.name}/performance-breaches"
  description = "Cyclone evaluate: cycles that found a model's performance below the policy's threshold."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.services.evaluate}\" AND jsonPayload.alert=\"performance_breach\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "model"
      value_type = "STRING"
    }
  }

  label_extractors = {
    model = "EXTRACT(jsonPayload.model)"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == "" ? 0 : 1

  display_name = "Cyclone alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "breach" {
  display_name          = "Cyclone: model performance below threshold"
  combiner              = "OR"
  notification_channels = google_monitoring_notification_channel.email[*].id

  conditions {
    display_name = "performance breach logged by evaluate"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.breaches.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.model"]
      }
    }
  }

  conditions {
    display_name = "retrain execution failed"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${local.jobs.retrain}\" AND metric.type = \"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A model served by ${local.services.predict} performs below the retrain policy, or a retrain failed. The loop retrains by itself; read evaluate's and retrain's logs for the decision and its reason."
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [google_project_service.apis]
}
