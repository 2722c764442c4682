# The serve and train images (tagged with the commit) and the model images the loop pushes (NAME-VERSION).
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption; a customer key would add a KMS key ring to run and pay for
  location      = var.region
  repository_id = var.name
  format        = "DOCKER"
  description   = "Cyclone: serve and train images, and one model image per model version."

  # Model images of versions long gone are deleted; the newest stay for rollbacks.
  cleanup_policies {
    id     = "keep-recent-versions"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "7776000s"
    }
  }

  depends_on = [google_project_service.apis]
}

locals {
  registry    = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
  serve_image = "${local.registry}/serve:${var.image_tag}"
  train_image = "${local.registry}/train:${var.image_tag}"
}
