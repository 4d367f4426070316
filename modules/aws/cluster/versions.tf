terraform {
  # 1.11 and aws 5.99: the manager module writes its SSM parameters write-only (`value_wo`).
  # Lower bounds only: the root (envs/*) decides how far up it goes.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.99"
    }
  }
}
