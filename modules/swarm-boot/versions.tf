terraform {
  # Provider-free: this module only renders text.
  required_version = ">= 1.5"
}
