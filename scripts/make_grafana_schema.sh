#!/usr/bin/env bash
# Regenerate dashgen's copy of Grafana's dashboard JSON Schema, and of the panel config types
# of the panels it generates, from the TypeScript types in @grafana/schema, so the packaged
# files can be re-made and audited instead of trusted.
#
# Usage: scripts/make_grafana_schema.sh [OUTPUT]   (default: dashgen/schemas/grafana-dashboard.schema.json)
# Needs: bash, node + npm (network access to the npm registry), python3.
set -euo pipefail

GRAFANA_SCHEMA_VERSION=13.2.3
GENERATOR_VERSION=2.9.0
# The generator depends on typescript ^5.9.3; pinning exactly that lets npm install one copy,
# the one the generator actually loads.
TYPESCRIPT_VERSION=5.9.3
# Ignore anything published after @grafana/schema 13.2.3 (2026-09-29), so the generator's
# unpinned transitive dependencies resolve the same way on every run.
NPM_BEFORE=2026-10-01T00:00:00Z
TYPES=node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo_root/dashgen/schemas/grafana-dashboard.schema.json}
[[ $out == /* ]] || out=$PWD/$out

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

npm install --no-audit --no-fund --ignore-scripts --before="$NPM_BEFORE" \
    "ts-json-schema-generator@$GENERATOR_VERSION" \
    "typescript@$TYPESCRIPT_VERSION" \
    "@grafana/schema@$GRAFANA_SCHEMA_VERSION" >&2

node_modules/.bin/ts-json-schema-generator --path "$TYPES" --type Dashboard --no-type-check \
    -o raw.json

# Pin the formatting (sorted keys, 2-space indent, UTF-8, no trailing newline): this is exactly
# what the generator writes today, and it keeps the bytes stable if a transitive dependency
# ever changes key order or whitespace.
mkdir -p "$(dirname "$out")"
python3 -c '
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False))
' raw.json "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2

# The panel config types of the panels dashgen generates: each plugin's Options and
# FieldConfig (the ``custom`` field options), into schemas/panels/<type>.schema.json.
panels_dir=$(dirname "$out")/panels
mkdir -p "$panels_dir"
for panel in timeseries stat gauge bargauge heatmap; do
    types=node_modules/@grafana/schema/dist/types/raw/composable/$panel/panelcfg/x/types.gen.d.ts
    for type in Options FieldConfig; do
        node_modules/.bin/ts-json-schema-generator --path "$types" --type "$type" \
            --no-type-check -o "$panel-$type.json"
    done
    python3 -c '
import json, sys
panel = sys.argv[1]
document = {
    "fieldConfig": json.load(open(f"{panel}-FieldConfig.json", encoding="utf-8")),
    "options": json.load(open(f"{panel}-Options.json", encoding="utf-8")),
}
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
' "$panel" "$panels_dir/$panel.schema.json.tmp"
    mv "$panels_dir/$panel.schema.json.tmp" "$panels_dir/$panel.schema.json"
    echo "wrote $panels_dir/$panel.schema.json" >&2
done
