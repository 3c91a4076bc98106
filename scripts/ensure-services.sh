#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis answer, starting them when they do not (the
# commands this machine's services are started with). Waits a bounded time for each.
set -uo pipefail

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_ready; then
  echo "starting PostgreSQL"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
if ! redis_ready; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 60); do
  pg_ready && redis_ready && { echo "PostgreSQL and Redis are up"; exit 0; }
  sleep 0.5
done
pg_ready || echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
redis_ready || echo "Redis is not reachable on 127.0.0.1:6379" >&2
exit 1
