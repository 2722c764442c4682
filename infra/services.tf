locals {
  connection = google_sql_database_instance.store.connection_name
  # How every service and job reaches the store, defined once: DATABASE_URL from Secret Manager, and the
  # Cloud SQL volume (the instance's unix socket, which DATABASE_URL's host names) mounted at /cloudsql.
  # Each workload takes them through the same three dynamic blocks (volumes, env, volume_mounts), the
  # secret before its other variables; Tests/InfraTests expands them.
  database = {
    secrets = {
      DATABASE_URL = { secret = google_secret_manager_secret.database_url.secret_id, version = "latest" }
    }
    volumes = {
      cloudsql = { instances = [local.connection], mount_path = "/cloudsql" }
    }
  }
  services = {
    predict      = "${var.name}-predict"
    predict_grpc = "${var.name}-predict-grpc"
    labels       = "${var.name}-label-ingest"
    evaluate     = "${var.name}-evaluate"
  }
  # Each model's first predict image, by model name; "_" is the one model of predict_image (whatever its name),
  # on the services of a one-model install. A model's services are NAME-predict-MODEL and
  # NAME-predict-MODEL-grpc.
  predict = length(var.models) > 0 ? var.models : { "_" = var.predict_image }
  # Where the loop deploys each model (PlatformSettings): one service pair for every model, or each its own.
  predict_targets = {
    PREDICT_SERVICE       = length(var.models) > 0 ? "" : local.services.predict
    PREDICT_GRPC_SERVICE  = length(var.models) > 0 ? "" : local.services.predict_grpc
    PREDICT_SERVICES      = join(",", [for model in keys(var.models) : "${model}=${var.name}-predict-${model}"])
    PREDICT_GRPC_SERVICES = join(",", [for model in keys(var.models) : "${model}=${var.name}-predict-${model}-grpc"])
  }
  jobs = {
    retrain    = "${var.name}-retrain"
    migrate    = "${var.name}-migrate"
    partitions = "${var.name}-partitions"
  }

  # Each function's environment besides DATABASE_URL (local.database), written out whole so each reads on its
  # own; empty values are left unset, so the code's defaults apply. Tests/InfraTests checks these against
  # what each function reads. evaluate and retrain share where the loop acts (PlatformSettings).
  env = {
    predict = {
      GOOGLE_CLOUD_PROJECT = var.project_id
    }
    # The same predict, serving the Open Inference Protocol over gRPC on the port Cloud Run sends HTTP/2
    # cleartext to (h2c, PORT); its REST port stays inside the container.
    predict_grpc = {
      GOOGLE_CLOUD_PROJECT = var.project_id
      GRPC_PORT            = "8080"
      REST_PORT            = "8081"
    }
    labels = {
      GOOGLE_CLOUD_PROJECT = var.project_id
      DATABASE_POOL_SIZE   = "2"
    }
    evaluate = {
      PLATFORM              = "cloudrun"
      GOOGLE_CLOUD_PROJECT  = var.project_id
      GOOGLE_CLOUD_REGION   = var.region
      PREDICT_SERVICE       = local.predict_targets.PREDICT_SERVICE
      PREDICT_GRPC_SERVICE  = local.predict_targets.PREDICT_GRPC_SERVICE
      PREDICT_SERVICES      = local.predict_targets.PREDICT_SERVICES
      PREDICT_GRPC_SERVICES = local.predict_targets.PREDICT_GRPC_SERVICES
      RETRAIN_JOB           = local.jobs.retrain
      ROLLOUT               = var.rollout
      SHADOW_ROWS           = var.shadow_rows
      CANARY_PERCENT        = tostring(var.canary_percent)
      CANARY_MIN_LABELS     = tostring(var.canary_min_labels)
      TRAINING_WINDOW_ROWS  = tostring(var.training_window_rows)
      RETRAIN_METRIC        = var.retrain_metric
      RETRAIN_THRESHOLD     = var.retrain_threshold
      MIN_LABELS            = tostring(var.min_labels)
      RETRAIN_COOLDOWN      = var.retrain_cooldown
      DATABASE_POOL_SIZE    = "2"
    }
    retrain = {
      PLATFORM               = "cloudrun"
      GOOGLE_CLOUD_PROJECT   = var.project_id
      GOOGLE_CLOUD_REGION    = var.region
      PREDICT_SERVICE        = local.predict_targets.PREDICT_SERVICE
      PREDICT_GRPC_SERVICE   = local.predict_targets.PREDICT_GRPC_SERVICE
      PREDICT_SERVICES       = local.predict_targets.PREDICT_SERVICES
      PREDICT_GRPC_SERVICES  = local.predict_targets.PREDICT_GRPC_SERVICES
      RETRAIN_JOB            = local.jobs.retrain
      ROLLOUT                = var.rollout
      CANARY_PERCENT         = tostring(var.canary_percent)
      TRAINING_WINDOW_ROWS   = tostring(var.training_window_rows)
      RETRAIN_METRIC         = var.retrain_metric
      SERVE_IMAGE            = local.serve_image
      MODEL_IMAGE_REPOSITORY = "${local.registry}/predict"
    }
    maintain = {}
  }
}

# predict, one service per model (local.predict): the loop owns its image, revisions and traffic once it runs
# (retrain deploys, evaluate promotes and rolls back); Terraform creates it with the model's first image and
# leaves those alone. The revision
# name is not ignored: a Terraform change to the template then makes an auto-named revision (with no
# traffic, which the loop assigns by name) instead of resending the loop's last name (a 409).
resource "google_cloud_run_v2_service" "predict" {
  for_each = local.predict

  name                = each.key == "_" ? local.services.predict : "${var.name}-predict-${each.key}"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.function["predict"].email
    timeout                          = "30s"
    max_instance_request_concurrency = 80

    scaling {
      min_instance_count = 0
      max_instance_count = var.predict_max_instances
    }

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
      image   = each.value
      command = ["predict"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
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
        for_each = { for key, value in local.env.predict : key => value if value != "" }
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

      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/readyz"
        }
      }

      liveness_probe {
        period_seconds = 30
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      traffic,
      client,
      client_version,
      launch_stage,
    ]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}

# predict over gRPC: the same image, models and store as predict, its container port declared h2c so
# gRPC reaches it end to end. The loop deploys, promotes and rolls back on it as on predict
# (PREDICT_GRPC_SERVICE), so both serve the same versions, canary and shadow.
resource "google_cloud_run_v2_service" "predict_grpc" {
  for_each = local.predict

  name                = each.key == "_" ? local.services.predict_grpc : "${var.name}-predict-${each.key}-grpc"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.function["predict"].email
    timeout                          = "30s"
    max_instance_request_concurrency = 80

    scaling {
      min_instance_count = 0
      max_instance_count = var.predict_max_instances
    }

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
      image   = each.value
      command = ["predict"]

      ports {
        name           = "h2c"
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
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
        for_each = { for key, value in local.env.predict_grpc : key => value if value != "" }
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

      # predict opens its gRPC port once the model is loaded and the writer runs.
      startup_probe {
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 30
        tcp_socket {
          port = 8080
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      traffic,
      client,
      client_version,
      launch_stage,
    ]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}

# The predict services of an install from before models: the one model of predict_image.
moved {
  from = google_cloud_run_v2_service.predict
  to   = google_cloud_run_v2_service.predict["_"]
}

moved {
  from = google_cloud_run_v2_service.predict_grpc
  to   = google_cloud_run_v2_service.predict_grpc["_"]
}

# label-ingest: authenticated callers only (predict_invokers).
resource "google_cloud_run_v2_service" "labels" {
  name                = local.services.labels
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.function["labels"].email
    timeout         = "60s"

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

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
      command = ["label-ingest"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = true
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
        for_each = { for key, value in local.env.labels : key => value if value != "" }
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

      startup_probe {
        http_get {
          path = "/readyz"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [client, client_version]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}

# evaluate: invoked only by the scheduler's account (OIDC); one cycle may take minutes on a big window.
resource "google_cloud_run_v2_service" "evaluate" {
  name                = local.services.evaluate
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.function["evaluate"].email
    timeout         = "600s"

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

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
      command = ["evaluate"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "1Gi"
        }
        cpu_idle = true
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
        for_each = { for key, value in local.env.evaluate : key => value if value != "" }
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

      startup_probe {
        http_get {
          path = "/readyz"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [client, client_version]
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url,
    google_project_iam_member.cloudsql_client,
  ]
}
