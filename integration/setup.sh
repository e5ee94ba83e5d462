#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian 12 machine:
# PostgreSQL 15, Barman's cloud tools (the reference that restores our
# backups), and a MinIO server built from the Go module proxy and cached
# outside the repository. Safe to run again: it skips what is there.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in postgresql-15 barman-cli-cloud python3-boto3 tar gzip bzip2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The MinIO release the tests are written against; building it takes a few
# minutes once, then the cached binary is reused.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
cache="${BCB_TOOLS:-$HOME/.cache/bcb-tools}"
stamp="$cache/bin/minio.$MINIO_VERSION"
if [[ ! -x "$cache/bin/minio" || ! -e "$stamp" ]]; then
  echo "setup: building MinIO $MINIO_VERSION (a few minutes, once)"
  mkdir -p "$cache/bin"
  (cd /tmp && GOBIN="$cache/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
  touch "$stamp"
fi
echo "setup: ready (MinIO at $cache/bin/minio)"
