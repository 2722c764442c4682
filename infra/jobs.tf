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

      dynamic "volumes" {
        for_each = local.database.volumes
        content {
          name = volumes.key
          cloud_sql_instance {
            instances = volumes.value.instances
          }
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

        dynamic "env" {
          for_each = local.database.secrets
          content {
            name = env.key
            value_source {
              secret_key_ref {
                secret  = env.value.secret
                version = env.value.version
              }
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

        dynamic "volume_mounts" {
          for_each = local.database.volumes
          content {
            name       = volume_mounts.key
            mount_path = volume_mounts.value.mount_path
          }
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

      dynamic "volumes" {
        for_each = local.database.volumes
        content {
          name = volumes.key
          cloud_sql_instance {
            instances = volumes.value.instances
          }
        }
      }

      containers {
        image   = local.serve_image
        command = ["cyclone"]
        args    = ["migrate"]

        dynamic "env" {
          for_each = local.database.secrets
          content {
            name = env.key
            value_source {
              secret_key_ref {
                secret  = env.value.secret
                version = env.value.version
              }
            }
          }
        }

        dynamic "volume_mounts" {
          for_each = local.database.volumes
          content {
            name       = volume_mounts.key
            mount_path = volume_mounts.value.mount_path
          }
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

      dynamic "volumes" {
        for_each = local.database.volumes
        content {
          name = volumes.key
          cloud_sql_instance {
            instances = volumes.value.instances
          }
        }
      }

      containers {
        image   = local.serve_image
        command = ["cyclone"]
        args    = concat(["partitions"], var.retain_days > 0 ? ["--retain-days", tostring(var.retain_days)] : [])

        dynamic "env" {
          for_each = local.database.secrets
          content {
            name = env.key
            value_source {
              secret_key_ref {
                secret  = env.value.secret
                version = env.value.version
              }
            }
          }
        }

        dynamic "volume_mounts" {
          for_each = local.database.volumes
          content {
            name       = volume_mounts.key
            mount_path = volume_mounts.value.mount_path
          }
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
