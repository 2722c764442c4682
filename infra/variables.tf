variable "project_id" {
  description = "The Google Cloud project Cyclone runs in."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, Cloud SQL, Artifact Registry, Scheduler)."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name (service accounts, services, jobs, the database instance)."
  type        = string
  default     = "cyclone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,14}$", var.name))
    error_message = "name must be 3 to 15 lowercase letters, digits or dashes, starting with a letter (service account ids add up to 15 characters)."
  }
}

variable "image_tag" {
  description = "Tag of the serve and train images Cloud Build pushed (the commit SHA)."
  type        = string
}

variable "predict_image" {
  description = "The first predict image of a one-model install (models empty): the serve image with the first model appended (scripts/deploy-gcp prints it, by digest). The loop owns predict's image afterwards."
  type        = string
  default     = ""

  validation {
    condition     = (var.predict_image != "") != (length(var.models) > 0)
    error_message = "Set predict_image (one model, on NAME-predict) or models (a service of its own per model), not both nor neither."
  }
}

variable "models" {
  description = "The models served, by name, each with its first predict image (the serve image with that model appended). Each model gets predict services of its own, NAME-predict-MODEL (REST) and NAME-predict-MODEL-grpc, which only its own retrains deploy to and its own verdicts promote or roll back on. The name is the model artifact's name."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for model in keys(var.models) : can(regex("^[a-z][a-z0-9-]{0,19}$", model))])
    error_message = "A model name here names its services: 1 to 20 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "retrain_metric" {
  description = "RETRAIN_METRIC: the metric the policy watches and the retrain gate compares; empty for the task's default (r2, roc_auc, accuracy)."
  type        = string
  default     = ""
}

variable "retrain_threshold" {
  description = "RETRAIN_THRESHOLD: absolute (0.4) or relative to the holdout value (0.9x); empty for the default."
  type        = string
  default     = ""
}

variable "min_labels" {
  description = "MIN_LABELS: fewer labels in the performance window means no decision."
  type        = number
  default     = 100
}

variable "retrain_cooldown" {
  description = "RETRAIN_COOLDOWN: no retrain this soon after a deploy, promotion or retrain request."
  type        = string
  default     = "1h"
}

variable "rollout" {
  description = "ROLLOUT: how a retrained version goes into service: shadow (scored beside live in the same revision until the paired verdict), canary (canary_percent of the traffic) or direct."
  type        = string
  default     = "shadow"

  validation {
    condition     = contains(["shadow", "canary", "direct"], var.rollout)
    error_message = "rollout is shadow, canary or direct."
  }
}

variable "shadow_rows" {
  description = "SHADOW_ROWS: labelled pairs of a shadow's full sample (looked at SHADOW_LOOKS times, 4 by default); empty for PERFORMANCE_WINDOW_ROWS."
  type        = string
  default     = ""
}

variable "canary_percent" {
  description = "CANARY_PERCENT: the share of predict's traffic a canary gets (rollout = canary; 0 deploys it to all at once)."
  type        = number
  default     = 10

  validation {
    condition     = var.canary_percent >= 0 && var.canary_percent <= 100 && floor(var.canary_percent) == var.canary_percent
    error_message = "canary_percent is a whole percentage from 0 to 100."
  }
}

variable "canary_min_labels" {
  description = "CANARY_MIN_LABELS: labels each of canary and live need before the canary is judged."
  type        = number
  default     = 100
}

variable "training_window_rows" {
  description = "TRAINING_WINDOW_ROWS: newest labelled predictions a retrain trains and judges on."
  type        = number
  default     = 100000
}

variable "evaluate_schedule" {
  description = "Cron schedule on which Cloud Scheduler calls evaluate's POST /evaluate."
  type        = string
  default     = "*/15 * * * *"
}

variable "schedule_time_zone" {
  description = "Time zone of the schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "retain_days" {
  description = "Days of predictions kept: the daily partitions job drops older ones (0 keeps everything)."
  type        = number
  default     = 90
}

variable "predict_max_instances" {
  description = "Most instances of predict (it scales to zero when idle). Each holds 4 database connections: keep the sum of every service's within the tier's limit."
  type        = number
  default     = 5
}

variable "max_instances" {
  description = "Most instances of label-ingest and of evaluate (each scales to zero; 2 database connections each)."
  type        = number
  default     = 3
}

variable "predict_public" {
  description = "Whether anyone on the internet may call predict (allUsers as invoker); otherwise callers need roles/run.invoker."
  type        = bool
  default     = false
}

variable "dashboard_viewers" {
  description = "Principals who may open evaluate's dashboard and its API (roles/run.invoker on evaluate, which also lets them run a cycle), such as user:ops@example.com or group:ml@example.com."
  type        = list(string)
  default     = []
}

variable "predict_invokers" {
  description = "Principals allowed to call predict and label-ingest, such as serviceAccount:app@PROJECT.iam.gserviceaccount.com."
  type        = list(string)
  default     = []
}

variable "database_tier" {
  description = "Cloud SQL machine tier (Enterprise edition): db-g1-small allows 50 connections (predict 5 x 4, label-ingest and evaluate 3 x 2 each, the jobs); db-custom-1-3840 (about 100) for steady traffic."
  type        = string
  default     = "db-g1-small"
}

variable "database_authorized_networks" {
  description = "CIDR ranges allowed to reach Cloud SQL's public IP directly (the Cloud Run connector needs none)."
  type        = list(string)
  default     = []
}

variable "alert_email" {
  description = "Where alerts on the evaluator's breach lines and failed retrains are emailed; empty for none."
  type        = string
  default     = ""
}

variable "deletion_protection" {
  description = "Protects the database, services and jobs from terraform destroy."
  type        = bool
  default     = true
}
