#!/usr/bin/env bash
# Regenerate dashgen's copy of Grafana's own vocabulary: the unit ids of @grafana/data's value
# formats (what a panel's "unit" may be) and the theme's named colours (what a threshold step's
# "color" may name), read from the npm package by running it, so the packaged file can be
# re-made and audited instead of trusted.
#
# Usage: scripts/make_grafana_vocabulary.sh [OUTPUT]
#        (default: dashgen/schemas/grafana-vocabulary.json)
# Needs: bash, node + npm (network access to the npm registry), python3.
set -euo pipefail

GRAFANA_DATA_VERSION=13.2.3
# Ignore anything published after Grafana 13.2.3 (2026-09-29), as make_grafana_schema.sh does.
NPM_BEFORE=2026-10-01T00:00:00Z

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo_root/dashgen/schemas/grafana-vocabulary.json}
[[ $out == /* ]] || out=$PWD/$out

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

npm install --no-audit --no-fund --ignore-scripts --before="$NPM_BEFORE" \
    "@grafana/data@$GRAFANA_DATA_VERSION" >&2

cat > read.cjs <<'JS'
// The date formatters ask the browser for its locale while the categories are built.
globalThis.navigator = { language: "en-US", languages: ["en-US"] };
const data = require("@grafana/data");
const units = data.getValueFormats().flatMap((category) => category.submenu.map((u) => u.value));
const colors = data.createTheme().visualization.hues.flatMap((hue) =>
  hue.shades.flatMap((shade) => [shade.name, ...(shade.aliases || [])])
);
process.stdout.write(JSON.stringify({ colors, units }));
JS
node read.cjs > raw.json

python3 -c '
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    found = json.load(f)
document = {
    "colors": sorted(set(found["colors"])),
    "source": "@grafana/data " + sys.argv[3],
    "units": sorted(set(found["units"])),
}
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
' raw.json "$out.tmp" "$GRAFANA_DATA_VERSION"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
