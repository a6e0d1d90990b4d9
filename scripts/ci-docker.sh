#!/usr/bin/env bash
# A Docker engine for the compose path, on a fresh Debian machine (CI) or a developer's one:
# installs what is missing from Debian's own packages (docker.io = Engine 20.10, docker-compose =
# Compose v1 1.29, debootstrap for `make offline-images`), then starts dockerd in the background
# unless `docker info` already answers, and waits for it. Idempotent; needs root.
#   scripts/ci-docker.sh           install + start
#   DOCKERD_LOG=/path ...          where dockerd logs (default /var/log/proxylab-dockerd.log)
set -euo pipefail

log=${DOCKERD_LOG:-/var/log/proxylab-dockerd.log}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
fi
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    echo "ci-docker: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No recommends: they pull git, apparmor and needrestart, none of which the lab uses.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "ci-docker: dockerd is running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

# The package's init script is not usable everywhere (no systemd in CI containers): start the
# daemon directly, detached from this shell so it outlives it and holds none of its pipes.
echo "ci-docker: starting dockerd (log: $log)"
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "ci-docker: dockerd is up ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "ci-docker: dockerd did not answer within 60 s; the end of its log:" >&2
tail -n 40 "$log" >&2 || true
exit 1
