# The only provider configuration of the GCP deployment: modules never configure providers.
# Credentials come from Application Default Credentials (`gcloud auth application-default login`)
# or GOOGLE_APPLICATION_CREDENTIALS; see the README's "Deploy to GCP".
provider "google" {
  project = var.project_id
  region  = var.region
}
