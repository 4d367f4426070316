terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0" # no cap: 7.x changed nothing used here (envs/gcp/README.md)
    }
  }
}
