#!/usr/bin/env bash
# Runs every fuzz target for a short while (FUZZTIME, 10s each by default):
# enough in CI to catch a regression on the inputs found before (kept in
# each package's testdata/fuzz, which plain `go test` also replays), and a
# start for longer runs by hand, e.g. FUZZTIME=10m bash integration/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
for target in conf:FuzzParseSize conf:FuzzLoadFile uploaders:FuzzNew \
  pg:FuzzBackupInfoRoundTrip pg:FuzzParseTablespaces pg:FuzzParseManifest; do
  pkg="${target%%:*}" name="${target#*:}"
  echo "fuzz: $name ($pkg, $fuzztime)"
  if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$pkg/" 2>&1); then
    printf '%s\n' "$out"
    exit 1
  fi
done
echo "fuzz: all targets passed"
