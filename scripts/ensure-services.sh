#!/usr/bin/env bash
# Make sure the services the tests and the demo talk to answer: Redis and PostgreSQL (and RabbitMQ for
# the broker fault tests, which skip it where it cannot run), started if they
# are installed but down (installed from Debian's packages when missing and we are root), and Debian's
# chromium for the browser tests.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif have sudo; then sudo -n "$@"; else return 1; fi; }
apt_install() {
  as_root true 2>/dev/null || { echo "ensure-services: cannot install $* (not root)"; return 1; }
  [ -n "${_APT_UPDATED:-}" ] || { as_root apt-get update -qq >/dev/null; _APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  have redis-server || apt_install redis-server redis-tools
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || redis-server --daemonize yes --port 6379
  for _ in $(seq 1 50); do redis_up && break; sleep 0.2; done
fi
redis_up && echo "redis: up" || { echo "redis: NOT answering on 127.0.0.1:6379"; exit 1; }

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  have pg_ctlcluster || apt_install postgresql
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start || true
  done
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
fi
pg_up && echo "postgresql: up" || { echo "postgresql: NOT answering on 127.0.0.1:5432"; exit 1; }

rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_up && have rabbitmq-server; then
  as_root true 2>/dev/null && { service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1; }
  for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
fi
rabbit_up && echo "rabbitmq: up" || echo "rabbitmq: not answering on 127.0.0.1:5672 (its broker tests skip)"

if ! have chromium; then
  apt_install chromium fonts-dejavu-core || echo "chromium: not installed (browser tests will fail)"
fi
have chromium && echo "chromium: $(chromium --version 2>/dev/null | head -1)"
exit 0
