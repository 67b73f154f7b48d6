#!/bin/sh
# Vendors the /docs (Scalar) and /docs/swagger (Swagger UI) bundles into
# api/shell/static/, so the served reference loads nothing from another host.
#
#   scripts/vendor-docs-assets.sh SCALAR_VERSION SWAGGER_UI_VERSION
#   e.g. scripts/vendor-docs-assets.sh 1.76.0 5.35.0   (`npm view <package> version` names the newest)
#
# Needs npm (only `npm pack`, which downloads one tarball from the registry). Each
# version gets a directory of its own; the files are copied byte for byte. Afterwards:
# set SCALAR_VERSION and SWAGGER_UI_VERSION in api/shell/docs_assets.py, update the
# table in api/shell/static/README.md (this prints the sizes and sha256 sums), delete
# the old directories, then run tests/integration/test_docs_offline.py.
set -eu

[ $# -eq 2 ] || { sed -n '5,6p' "$0" >&2; exit 2; }
scalar=$1
swagger=$2
root=$(cd "$(dirname "$0")/.." && pwd)
static=$root/api/shell/static
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "@scalar/api-reference@$scalar" "swagger-ui-dist@$swagger" >/dev/null
mkdir scalar swagger
tar -xzf "scalar-api-reference-$scalar.tgz" -C scalar
tar -xzf "swagger-ui-dist-$swagger.tgz" -C swagger

# Scalar: the one-file browser build (the .esm build splits into ~100 chunks and
# needs <script type=module>, which Litestar's page does not write)
dest=$static/scalar-api-reference-$scalar
mkdir -p "$dest"
cp scalar/package/dist/browser/standalone.js "$dest/"
if [ -f scalar/package/LICENSE ]; then
    cp scalar/package/LICENSE "$dest/"
elif [ ! -f "$dest/LICENSE" ]; then
    # the npm package ships none; the repository's (MIT) covers it
    previous=$(find "$static" -path '*/scalar-api-reference-*/LICENSE' ! -path "$dest/*" | head -n 1)
    [ -n "$previous" ] || { echo "no LICENSE for Scalar: copy github.com/scalar/scalar's into $dest" >&2; exit 1; }
    cp "$previous" "$dest/LICENSE"
fi

# Swagger UI: the bundle, its stylesheet and the standalone preset Litestar's page loads
dest=$static/swagger-ui-dist-$swagger
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css LICENSE NOTICE \
    swagger-ui-bundle.js.LICENSE.txt swagger-ui-standalone-preset.js.LICENSE.txt; do
    cp "swagger/package/$f" "$dest/"
done

cd "$static"
for f in "scalar-api-reference-$scalar"/* "swagger-ui-dist-$swagger"/*; do
    printf '%-60s %9s bytes  sha256 %s\n' "$f" "$(wc -c <"$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done
