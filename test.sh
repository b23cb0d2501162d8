#!/usr/bin/env bash
# The test command from the README: every package, with the race detector.
# Fuzz targets run their seed corpora (testdata/fuzz) as ordinary tests.
set -euo pipefail
cd "$(dirname "$0")"
exec go test -race -count=1 -timeout 15m ./... "$@"
