# retrain: started by evaluate with jobs.run (the model and request as env overrides). One task, no retry:
# a failed retrain reports itself, and the next evaluation cycle decides again.
resource "google_cloud_run_v2_job" "retrain" {
  name                = local.jobs.retrain
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.function["retrain"].email
      timeout         = "3600s"
      max_retries     = 0

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [local.connection]
        }
      }

      containers {
        image   = local.train_image
        command = ["retrain"]

        resources {
          limits = {
            cpu    = "2"
            memory = "4Gi"
          }
        }

        env {
          name = "DATABASE_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.database_url.secret_id
              version = "latest"
            }
          }
        }

        dynamic "env" {
          for_each = { for key, value in local.env.retrain : key => value if value != "" }
          content {
            name  = env.key
            value = env.value
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [client, client_version, launch_stage]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}

# migrate: `cyclone migrate`, run once after each apply or image roll-forward, before predict's new
# revisions serve (scripts/deploy-gcp runs it). Safe to run twice.
resource "google_cloud_run_v2_job" "migrate" {
  name                = local.jobs.migrate
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account = google_service_account.function["maintain"].email
      timeout         = "900s"
      max_retries     = 1

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [local.connection]
        }
      }

      containers {
        image   = local.serve_image
        command = ["cyclone"]
        args    = ["migrate"]

        env {
          name = "DATABASE_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.database_url.secret_id
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [client, client_version, launch_stage]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}

# partitions: daily, creates the prediction partitions a week ahead and drops days past retain_days.
resource "google_cloud_run_v2_job" "partitions" {
  name                = local.jobs.partitions
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account = google_service_account.function["maintain"].email
      timeout         = "900s"
      max_retries     = 2

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [local.connection]
        }
      }

      containers {
        image   = local.serve_image
        command = ["cyclone"]
        args    = concat(["partitions"], var.retain_days > 0 ? ["--retain-days", tostring(var.retain_days)] : [])

        env {
          name = "DATABASE_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.database_url.secret_id
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [client, client_version, launch_stage]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}
