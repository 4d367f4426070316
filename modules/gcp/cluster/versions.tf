terraform {
  # terraform_data (zones.tf) needs 1.4; optional() attribute defaults need 1.3.
  # Lower bounds only: the root (envs/gcp) decides how far up it goes.
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}
