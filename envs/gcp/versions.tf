terraform {
  # 1.11: the cluster module writes the managed database's password write-only.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.2" # no cap; 7.2 for Cloud SQL's final backup (README: Provider versions)
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7" # the ephemeral random_password of the managed database
    }
  }
}
