# The e2e image plus the CA of the box's git server (tests/support/services/git_server.py, a new
# throwaway CA per session): what a user whose git server has a certificate from a private CA
# builds on the Air-Tasks image (docs/dag-bundles.md). git reads GIT_SSL_CAINFO for every clone and
# fetch, in every service the image runs (dag-processor, API server, workers). Built by
# tests/e2e/chain.py, from a context holding the CA alone (never the server's key).
ARG BASE_IMAGE=airtasks-e2e:latest
FROM ${BASE_IMAGE}
COPY git-ca.pem /etc/airtasks-git/ca.pem
ENV GIT_SSL_CAINFO=/etc/airtasks-git/ca.pem
