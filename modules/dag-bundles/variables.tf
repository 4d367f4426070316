variable "bucket" {
  description = "The cluster's bucket that bucket bundles read (its name), or null when the cluster has none; required with a bucket bundle."
  type        = string
  default     = null

  validation {
    condition     = var.bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.bucket, "x")))
    error_message = "bucket must be a bucket name such as \"airtasks-demo-dags\", or null."
  }
}

variable "cloud" {
  description = "`aws` or `gcp`: the bucket's URL scheme, the upload command and what `git.credential` names."
  type        = string

  validation {
    condition     = contains(["aws", "gcp"], var.cloud)
    error_message = "cloud must be \"aws\" or \"gcp\"."
  }
}

variable "dag_bundles" {
  description = "Your DAGs, besides the image's own folder (`dags-folder`: the examples and the scaler DAG, always kept): a list of Airflow DAG bundles (see docs/dag-bundles.md). Each has a `name` and exactly one of `git` (`url`: https://, ssh:// or git@host:path; `ref`: branch or tag, default \"main\"; `subdir`: the DAGs' folder in the repository, null = its root; `refresh_seconds`: how often the repository is fetched, default 60; `credential`: where a private repository's token or deploy key is kept, never the secret itself: an SSM SecureString parameter's name on AWS, a Secret Manager secret's id on GCP) or `bucket` (`prefix`: a folder of the cluster's DAG bucket such as \"shared/\", which you upload to; `refresh_seconds`: how often it is synced, default 60). `[]` (the default) = only the image's DAGs."
  type = list(object({
    name = string
    git = optional(object({
      url             = string
      ref             = optional(string, "main")
      subdir          = optional(string)
      refresh_seconds = optional(number, 60)
      credential      = optional(string)
    }))
    bucket = optional(object({
      prefix          = string
      refresh_seconds = optional(number, 60)
    }))
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for b in var.dag_bundles : can(regex("^[a-z][a-z0-9_-]{0,31}$", b.name))])
    error_message = "dag_bundles: every name must match ^[a-z][a-z0-9_-]{0,31}$ (a lowercase letter, then up to 31 lowercase letters, digits, '-' or '_'), e.g. \"team\"; rename the bundle."
  }

  validation {
    condition     = length(distinct([for b in var.dag_bundles : b.name])) == length(var.dag_bundles) && !contains([for b in var.dag_bundles : b.name], "dags-folder")
    error_message = "dag_bundles: names must be unique and not \"dags-folder\" (the image's own DAGs; a run records its bundle by name); rename the duplicate."
  }

  validation {
    condition     = alltrue([for b in var.dag_bundles : (b.git == null) != (b.bucket == null)])
    error_message = "dag_bundles: each bundle needs exactly one of git or bucket; set git = { url = \"https://...\" } or bucket = { prefix = \"shared/\" }, not both or neither."
  }

  validation {
    condition = alltrue([for b in var.dag_bundles : b.git == null ? true : can(regex(
      "^(https://[A-Za-z0-9.-]+(:[0-9]+)?/[^\\s]+|ssh://[^\\s/]+/[^\\s]+|git@[A-Za-z0-9.-]+:[^\\s]+)$", b.git.url
    ))])
    error_message = "dag_bundles: git.url must start with https:// or ssh://, or be scp-style git@host:path (e.g. \"https://git.example.org/team/dags.git\"), without a user or token in it: name the secret that holds it in git.credential for a private repository."
  }

  validation {
    condition = alltrue([for b in var.dag_bundles : b.git == null ? true : (
      can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*$", b.git.ref)) &&
      (b.git.subdir == null || (can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", coalesce(b.git.subdir, "x"))) && !strcontains(coalesce(b.git.subdir, "x"), "..")))
    )])
    error_message = "dag_bundles: git.ref must be a branch or tag such as \"main\", and git.subdir a folder inside the repository such as \"dags\" (no leading \"/\", no \"..\"), or null for its root."
  }

  validation {
    condition = alltrue([for b in var.dag_bundles : b.git == null ? true : (b.git.credential == null || can(regex(
      var.cloud == "aws" ? "^(/[A-Za-z0-9_.-]+){1,15}$" : "^(projects/[a-z0-9-]+/secrets/)?[A-Za-z0-9_-]{1,255}$", coalesce(b.git.credential, "x")
    )))])
    error_message = "dag_bundles: git.credential must name the secret, never hold the token or key itself: an SSM parameter such as \"/team/git-token\" on AWS, a Secret Manager secret such as \"team-git-token\" on GCP."
  }

  validation {
    condition = alltrue([for b in var.dag_bundles : b.git == null ? true : (
      b.git.refresh_seconds >= 10 && b.git.refresh_seconds <= 86400 && floor(b.git.refresh_seconds) == b.git.refresh_seconds
      )]) && alltrue([for b in var.dag_bundles : b.bucket == null ? true : (
      b.bucket.refresh_seconds >= 10 && b.bucket.refresh_seconds <= 86400 && floor(b.bucket.refresh_seconds) == b.bucket.refresh_seconds
    )])
    error_message = "dag_bundles: refresh_seconds must be a whole number from 10 to 86400 (how often Airflow looks for changes; e.g. 60)."
  }

  validation {
    condition     = alltrue([for b in var.dag_bundles : b.bucket == null ? true : can(regex("^[a-z0-9][a-z0-9._-]*/([a-z0-9][a-z0-9._-]*/)*$", b.bucket.prefix))])
    error_message = "dag_bundles: bucket.prefix must be a folder such as \"shared/\" (lowercase letters, digits, '.', '_', '-', parts ending in \"/\", no leading \"/\")."
  }

  validation {
    condition     = alltrue([for b in var.dag_bundles : b.bucket == null ? true : !startswith(b.bucket.prefix, "logs/") && !startswith(b.bucket.prefix, "backups/")])
    error_message = "dag_bundles: bucket.prefix must not be under logs/ or backups/, the cluster's own folders in the bucket; use another folder such as \"shared/\"."
  }

  validation {
    condition = alltrue(flatten([
      for i, a in var.dag_bundles : [
        for j, b in var.dag_bundles : a.bucket == null || b.bucket == null || i == j || !startswith(try(a.bucket.prefix, ""), try(b.bucket.prefix, ""))
      ]
    ]))
    error_message = "dag_bundles: bucket prefixes must not overlap (\"a/\" and \"a/b/\" would load the same files twice); give each bundle its own folder."
  }
}

variable "region" {
  description = "The bucket's region (AWS: the S3 bundle's connection needs it); null on GCP."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", coalesce(var.region, "x")))
    error_message = "region must be an AWS region name such as \"eu-west-1\", or null on GCP."
  }
}
