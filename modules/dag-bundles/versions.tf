terraform {
  # Provider-free: this module checks and renders the input. 1.9: a validation reads `cloud` too.
  required_version = ">= 1.9"
}
