# PostgreSQL 15, RabbitMQ (management) and nginx from Debian bookworm packages, in one image that
# stands in for the official postgres / rabbitmq / nginx images in the local stack (`make up
# MODE=swarm|cluster`, the tests). Built on the same base as the Air-Tasks image
# (dev/airtasks_dev/images.py), it needs no registry beyond the one that base came from.
# Its docker-entrypoint.sh follows the official images' conventions that the stack uses:
# POSTGRES_USER / POSTGRES_DB / POSTGRES_PASSWORD_FILE, RABBITMQ_DEFAULT_USER /
# RABBITMQ_DEFAULT_PASS, and `nginx -g 'daemon off;'` with /etc/nginx/nginx.conf.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PATH=/usr/lib/postgresql/15/bin:$PATH
RUN set -eux; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends \
      postgresql-15 rabbitmq-server nginx-light curl procps >/dev/null; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    rabbitmq-plugins enable --offline rabbitmq_management >/dev/null; \
    rm -rf /var/lib/postgresql/15 /etc/nginx/sites-enabled/*; \
    mkdir -p /var/lib/postgresql/data /var/run/postgresql; \
    chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY services-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
