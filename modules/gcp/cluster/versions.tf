terraform {
  # 1.11: write-only arguments (the database's password, database.tf); terraform_data (zones.tf)
  # needs 1.4, optional() attribute defaults 1.3.
  # Lower bounds only: the root (envs/gcp) decides how far up it goes.
  required_version = ">= 1.11"

  required_providers {
    # 7.2: final_backup_config of google_sql_database_instance (database.tf); the write-only
    # password_wo and secret_data_wo came in 6.23.
    google = {
      source  = "hashicorp/google"
      version = ">= 7.2"
    }
    # 3.7: the ephemeral random_password (database.tf).
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7"
    }
  }
}
