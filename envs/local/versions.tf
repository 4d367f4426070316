terraform {
  # 1.11 and aws 5.99: write-only SSM parameter values (`value_wo`), so no token reaches state.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.99, < 6.0"
    }
  }
}
