output "predict_url" {
  description = "predict's URL (POST /predict), for the one model of predict_image; null with models (predict_urls)."
  value       = try(google_cloud_run_v2_service.predict["_"].uri, null)
}

output "predict_grpc_url" {
  description = "predict's gRPC address (the Open Inference Protocol's GRPCInferenceService; port 443, TLS), for the one model of predict_image."
  value       = try(google_cloud_run_v2_service.predict_grpc["_"].uri, null)
}

output "predict_urls" {
  description = "Each model's predict URLs, by model name (\"_\": the one model of predict_image): rest and grpc."
  value = {
    for model, service in google_cloud_run_v2_service.predict : model => {
      rest = service.uri
      grpc = google_cloud_run_v2_service.predict_grpc[model].uri
    }
  }
}

output "label_ingest_url" {
  description = "label-ingest's URL: POST /labels."
  value       = google_cloud_run_v2_service.labels.uri
}

output "evaluate_url" {
  description = "evaluate's URL (the scheduler calls POST /evaluate)."
  value       = google_cloud_run_v2_service.evaluate.uri
}

output "retrain_job" {
  description = "The retrain Cloud Run job."
  value       = google_cloud_run_v2_job.retrain.name
}

output "migrate_job" {
  description = "The migration job: gcloud run jobs execute it after each roll-forward."
  value       = google_cloud_run_v2_job.migrate.name
}

output "registry" {
  description = "The Artifact Registry path of the serve, train and model images."
  value       = local.registry
}

output "database_connection_name" {
  description = "Cloud SQL's connection name (PROJECT:REGION:INSTANCE)."
  value       = google_sql_database_instance.store.connection_name
}

output "database_url_secret" {
  description = "The Secret Manager secret holding DATABASE_URL."
  value       = google_secret_manager_secret.database_url.id
}

output "build_source_bucket" {
  description = "Where gcloud builds submit stages the source (--gcs-source-staging-dir=gs://BUCKET/source)."
  value       = google_storage_bucket.build_source.name
}
