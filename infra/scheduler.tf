# Cloud Scheduler calls evaluate's POST /evaluate with an OIDC token for the service's URL.
resource "google_cloud_scheduler_job" "evaluate" {
  name             = "${var.name}-evaluate"
  region           = var.region
  description      = "Cyclone: one evaluation cycle (metrics, drift, canary, retrain decision)"
  schedule         = var.evaluate_schedule
  time_zone        = var.schedule_time_zone
  attempt_deadline = "600s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "30s"
  }

  http_target {
    uri         = "${google_cloud_run_v2_service.evaluate.uri}/evaluate"
    http_method = "POST"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloud_run_v2_service.evaluate.uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_invokes_evaluate]
}

# The partitions job, daily: jobs.run on the Admin API with an OAuth token.
resource "google_cloud_scheduler_job" "partitions" {
  name             = "${var.name}-partitions"
  region           = var.region
  description      = "Cyclone: daily prediction partitions (a week ahead; old days dropped)"
  schedule         = "15 1 * * *"
  time_zone        = var.schedule_time_zone
  attempt_deadline = "60s"

  retry_config {
    retry_count = 3
  }

  http_target {
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.partitions.name}:run"
    http_method = "POST"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oauth_token {
      service_account_email = google_service_account.scheduler.email
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_partitions]
}
