# Cloud SQL for PostgreSQL: the prediction store, the model registry and the event trail.
resource "google_sql_database_instance" "store" {
  # checkov:skip=CKV_GCP_60: the public IP is how Cloud Run's built-in connector reaches the instance without a VPC connector; no network is authorised unless listed, and client certificates are required
  # checkov:skip=CKV_GCP_79: PostgreSQL 15 is the version the tests run against (Debian 12's); move with them
  # checkov:skip=CKV2_GCP_13: log_duration would log every statement, and predict inserts all day; slow statements show in Query Insights
  name                = var.name
  region              = var.region
  database_version    = "POSTGRES_15"
  deletion_protection = var.deletion_protection

  settings {
    # Enterprise edition: the small shared-core tiers (db-f1-micro) are only offered there.
    edition                     = "ENTERPRISE"
    tier                        = var.database_tier
    availability_type           = "ZONAL"
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection

    backup_configuration {
      enabled                        = true
      start_time                     = "03:00"
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = 14
      }
    }

    # The public IP serves Cloud Run's built-in connector (mTLS, IAM-checked); no network is authorised
    # to connect to it directly unless listed, and a direct connection needs a client certificate.
    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
      dynamic "authorized_networks" {
        for_each = var.database_authorized_networks
        content {
          value = authorized_networks.value
        }
      }
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    insights_config {
      query_insights_enabled = true
    }

    user_labels = {
      app = var.name
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_sql_database" "cyclone" {
  name     = "cyclone"
  instance = google_sql_database_instance.store.name
}

resource "random_password" "database" {
  length  = 32
  special = false
}

resource "google_sql_user" "cyclone" {
  name     = "cyclone"
  instance = google_sql_database_instance.store.name
  password = random_password.database.result
}

# The whole connection URL is the secret: the functions read DATABASE_URL and connect through the unix
# socket of the Cloud SQL volume (/cloudsql/PROJECT:REGION:INSTANCE), which the connector encrypts.
resource "google_secret_manager_secret" "database_url" {
  secret_id = "${var.name}-database-url"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "database_url" {
  secret      = google_secret_manager_secret.database_url.id
  secret_data = "postgres://${google_sql_user.cyclone.name}:${random_password.database.result}@/${google_sql_database.cyclone.name}?host=/cloudsql/${google_sql_database_instance.store.connection_name}"
}
