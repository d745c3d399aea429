#!/usr/bin/env bash
# Print a docsort.env for docker-compose with fresh random secrets:
#   deploy/make-env.sh > docsort.env && chmod 600 docsort.env
set -euo pipefail
rand() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
secret_key="$(rand 48)"
pg_password="$(rand 24)"
redis_password="$(rand 24)"
flower_password="$(rand 18)"
cat <<ENV
DOCSORT_SECRET_KEY=${secret_key}
POSTGRES_PASSWORD=${pg_password}
REDIS_PASSWORD=${redis_password}
DOCSORT_DATABASE_URL=postgresql+psycopg://docsort:${pg_password}@postgres:5432/docsort
DOCSORT_BROKER_URL=redis://:${redis_password}@redis:6379/0
FLOWER_BASIC_AUTH=admin:${flower_password}
ENV
