terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Keep the state in a bucket of the project (it holds the database password):
  # terraform init -backend-config="bucket=PROJECT-tfstate" -backend-config="prefix=cyclone"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
