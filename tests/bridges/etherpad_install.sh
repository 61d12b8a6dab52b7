#!/usr/bin/env bash
# Install a stock Etherpad 1.8.14 for the bridge tests, once, into a cache folder.
#
# Usage: tests/bridges/etherpad_install.sh [DIR]   (default: .cache/etherpad in the repository)
#
# Layout made here (what Etherpad's own code expects at run time):
#   DIR/src                         the ep_etherpad-lite package
#   DIR/node_modules/ep_etherpad-lite -> ../src
#   DIR/src/node_modules/<lib> -> ../../node_modules/<lib>   (the pad page's browser libraries)
# ueberdb2 is pinned to 1.4.13 through npm "overrides": later versions pull an optional
# dependency from a git host that cannot be reached from here. A marker file makes re-runs free.
set -euo pipefail

VERSION=1.8.14
LAYOUT=2  # bump when the layout below changes, so caches are rebuilt
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$repo/.cache/etherpad}"
marker="$dir/.installed-$VERSION-$LAYOUT"

if [[ -f "$marker" && -f "$dir/src/node/server.js" ]]; then
    echo "etherpad $VERSION already installed in $dir"
    exit 0
fi

command -v node >/dev/null || { echo "node is required (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required (apt-get install npm)" >&2; exit 1; }

build="$dir.build.$$"
rm -rf "$build"
mkdir -p "$build"
trap 'rm -rf "$build"' EXIT
cat >"$build/package.json" <<JSON
{
  "name": "wopibridge-etherpad",
  "private": true,
  "dependencies": { "ep_etherpad-lite": "$VERSION" },
  "overrides": { "ueberdb2": "1.4.13" }
}
JSON
(cd "$build" && npm install --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error)

# ep_etherpad-lite's own dependencies must resolve from src/: keep them in one node_modules
# beside src and point the package name back at src.
mv "$build/node_modules/ep_etherpad-lite" "$build/src"
ln -s ../src "$build/node_modules/ep_etherpad-lite"
# The pad page's own scripts load a few libraries from src/node_modules (Minify.js's
# LIBRARY_WHITELIST). Link just those: a link of the whole folder would make a cycle
# through ep_etherpad-lite -> ../src that `npm ls` cannot walk.
mkdir -p "$build/src/node_modules"
for lib in async js-cookie security split-grid tinycon underscore unorm; do
    if [[ -e "$build/node_modules/$lib" ]]; then
        ln -s "../../node_modules/$lib" "$build/src/node_modules/$lib"
    fi
done
# Etherpad lists its plugins with the npm 6 it ships (`npm ls`), which fails on packages it
# calls extraneous when a package.json is present; Etherpad expects none at its root.
rm -f "$build/package.json" "$build/package-lock.json"
# Settings and the API key are written per run by the tests; only the code is cached.
touch "$build/.installed-$VERSION-$LAYOUT"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$build" "$dir"
trap - EXIT
echo "etherpad $VERSION installed in $dir"
