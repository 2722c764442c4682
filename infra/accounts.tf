# One service account per function, each with only what its code does (Tests/InfraTests checks the roles
# against the code). Nothing holds a project-wide editor or owner role.
locals {
  # Function → what it is.
  accounts = {
    predict  = "predict: serves the model and stores each prediction"
    labels   = "label-ingest: attaches ground truth to stored predictions"
    evaluate = "evaluate: metrics, drift, retrain decisions and canary traffic"
    retrain  = "retrain: trains, pushes the model image and deploys it to predict"
    maintain = "maintenance jobs: schema migrations and daily partitions (cyclone)"
  }
  # The accounts that use the database.
  database_users = ["predict", "labels", "evaluate", "retrain", "maintain"]
}

resource "google_service_account" "function" {
  for_each = local.accounts

  account_id   = "${var.name}-${each.key}"
  display_name = "Cyclone ${each.key}"
  description  = each.value

  depends_on = [google_project_service.apis]
}

# Cloud Scheduler's identity: it calls evaluate (OIDC) and runs the partitions job.
resource "google_service_account" "scheduler" {
  account_id   = "${var.name}-scheduler"
  display_name = "Cyclone scheduler"
  description  = "Cloud Scheduler: calls evaluate on its schedule and runs the daily partitions job"

  depends_on = [google_project_service.apis]
}

# Cloud Build's identity: pushes the images and, when asked, rolls the functions forward.
resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "Cyclone build"
  description  = "Cloud Build: tests, builds and pushes the serve and train images"

  depends_on = [google_project_service.apis]
}

# The database: the Cloud SQL connector (project-level: Cloud SQL has no instance-level IAM) and the secret
# holding DATABASE_URL.
resource "google_project_iam_member" "cloudsql_client" {
  for_each = toset(local.database_users)

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.function[each.value].member
}

resource "google_secret_manager_secret_iam_member" "database_url" {
  for_each = toset(local.database_users)

  secret_id = google_secret_manager_secret.database_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value].member
}

# evaluate and retrain log their decisions as structured lines (the breach alert reads them).
resource "google_project_iam_member" "log_writer" {
  for_each = toset(["evaluate", "retrain"])

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.function[each.value].member
}

# evaluate runs the retrain job with overrides (jobs.run) and lists its executions.
resource "google_cloud_run_v2_job_iam_member" "evaluate_runs_retrain" {
  name     = google_cloud_run_v2_job.retrain.name
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.function["evaluate"].member
}

# evaluate moves predict's traffic (promotion, rollback); retrain adds predict's revisions. Both do the same
# on the gRPC predict, for every model's services (keyed ACCOUNT/MODEL; the one model of predict_image keeps
# the key ACCOUNT).
resource "google_cloud_run_v2_service_iam_member" "predict_developer" {
  for_each = {
    for pair in setproduct(keys(local.predict), ["evaluate", "retrain"]) :
    pair[0] == "_" ? pair[1] : "${pair[1]}/${pair[0]}" => { model = pair[0], account = pair[1] }
  }

  name     = google_cloud_run_v2_service.predict[each.value.model].name
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.function[each.value.account].member
}

resource "google_cloud_run_v2_service_iam_member" "predict_grpc_developer" {
  for_each = {
    for pair in setproduct(keys(local.predict), ["evaluate", "retrain"]) :
    pair[0] == "_" ? pair[1] : "${pair[1]}/${pair[0]}" => { model = pair[0], account = pair[1] }
  }

  name     = google_cloud_run_v2_service.predict_grpc[each.value.model].name
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.function[each.value.account].member
}

# Updating predict means acting as its service account.
resource "google_service_account_iam_member" "act_as_predict" {
  for_each = toset(["evaluate", "retrain"])

  service_account_id = google_service_account.function["predict"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.value].member
}

# Promoting a shadow makes a revision of the challenger's own image: evaluate deploys that image, and whoever
# deploys an image reads it. A traffic move (a canary's promotion, any rollback) reads none.
resource "google_artifact_registry_repository_iam_member" "evaluate_reader" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.function["evaluate"].member
}

# retrain reads the serve image and pushes model images.
resource "google_artifact_registry_repository_iam_member" "retrain_writer" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.function["retrain"].member
}

# The scheduler calls evaluate and runs the partitions job.
resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_evaluate" {
  name     = google_cloud_run_v2_service.evaluate.name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# The dashboard lives on evaluate, which only the scheduler may call; its viewers are named here.
resource "google_cloud_run_v2_service_iam_member" "dashboard_viewers" {
  for_each = toset(var.dashboard_viewers)

  name     = google_cloud_run_v2_service.evaluate.name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_partitions" {
  name     = google_cloud_run_v2_job.partitions.name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# Cloud Build pushes images, writes its logs, and rolls label-ingest, evaluate and the jobs forward
# (`_DEPLOY=true`), acting as their accounts.
resource "google_artifact_registry_repository_iam_member" "build_writer" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_cloud_run_v2_service_iam_member" "build_rolls_services" {
  for_each = {
    labels   = google_cloud_run_v2_service.labels.name
    evaluate = google_cloud_run_v2_service.evaluate.name
  }

  name     = each.value
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.build.member
}

resource "google_cloud_run_v2_job_iam_member" "build_rolls_jobs" {
  for_each = {
    retrain    = google_cloud_run_v2_job.retrain.name
    migrate    = google_cloud_run_v2_job.migrate.name
    partitions = google_cloud_run_v2_job.partitions.name
  }

  name     = each.value
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_acts_as" {
  for_each = toset(["labels", "evaluate", "retrain", "maintain"])

  service_account_id = google_service_account.function[each.value].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

# Who may call predict (REST and gRPC) and label-ingest: anyone (predict_public, predict only) or the listed
# principals.
resource "google_cloud_run_v2_service_iam_member" "predict_public" {
  for_each = var.predict_public ? { for key, service in local.invoked : key => service if key != "labels" } : {}

  name     = each.value
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

moved {
  from = google_cloud_run_v2_service_iam_member.predict_public[0]
  to   = google_cloud_run_v2_service_iam_member.predict_public["predict"]
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = {
    for pair in setproduct(keys(local.invoked), var.predict_invokers) : "${pair[0]} ${pair[1]}" => pair
  }

  name     = local.invoked[each.value[0]]
  location = var.region
  role     = "roles/run.invoker"
  member   = each.value[1]
}

locals {
  # The services predict_invokers may call: every model's predict (REST and gRPC; keyed predict/MODEL, the one
  # model of predict_image keeping the key predict) and label-ingest.
  invoked = merge(
    { for model, service in google_cloud_run_v2_service.predict : model == "_" ? "predict" : "predict/${model}" => service.name },
    { for model, service in google_cloud_run_v2_service.predict_grpc : model == "_" ? "predict_grpc" : "predict_grpc/${model}" => service.name },
    { labels = google_cloud_run_v2_service.labels.name },
  )
}

# Waiting for a Cloud Run update means polling its long-running operation, which belongs to the project,
# not to the service: evaluate and retrain may read operations and nothing else there.
resource "google_project_iam_custom_role" "run_operations" {
  role_id     = replace("${var.name}_run_operations", "-", "_")
  title       = "Cyclone: read Cloud Run operations"
  description = "Poll the long-running operations of Cloud Run updates (services.patch)."
  permissions = ["run.operations.get"]
}

resource "google_project_iam_member" "run_operations" {
  for_each = toset(["evaluate", "retrain"])

  project = var.project_id
  role    = google_project_iam_custom_role.run_operations.id
  member  = google_service_account.function[each.value].member
}

# `gcloud builds submit` uploads the source here; the build reads it as its own account.
resource "google_storage_bucket" "build_source" {
  # checkov:skip=CKV_GCP_62: access logs of a bucket that only holds uploaded build sources add nothing; Cloud Audit Logs record access
  # checkov:skip=CKV_GCP_78: versioning is pointless for sources that expire after a week
  name                        = "${var.project_id}-${var.name}-build"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
