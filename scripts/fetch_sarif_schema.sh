#!/usr/bin/env bash
# Fetch the SARIF 2.1.0 JSON Schema that the tests validate `verify --format sarif` against:
# the copy Microsoft's SARIF SDK ships in its multitool package on npm (the OASIS schema the
# reference validator uses), so the committed file can be re-made and audited.
#
# Usage: scripts/fetch_sarif_schema.sh [OUTPUT]   (default: tests/data/sarif-2.1.0.schema.json)
# Needs: bash, npm (network access to the npm registry), tar.
set -euo pipefail

PACKAGE=@microsoft/sarif-multitool-linux@5.7.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo_root/tests/data/sarif-2.1.0.schema.json}
[[ $out == /* ]] || out=$PWD/$out

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
tarball=$(npm pack --silent "$PACKAGE")
tar -xzf "$tarball" package/sarif-2.1.0.json
cp package/sarif-2.1.0.json "$out"
echo "wrote $out from $PACKAGE"
