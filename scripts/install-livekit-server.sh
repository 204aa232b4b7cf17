#!/usr/bin/env bash
# Installs the pinned livekit-server into .tools/bin/livekit-server (git-ignored), built from
# source with `go install` through the Go module proxy. Idempotent: does nothing when a usable
# binary is already there, or when $LIVEKIT_SERVER_BIN points at an existing binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Single source of truth for the version: lib/livekit/devserver.py.
VERSION="$(sed -n 's/^LIVEKIT_SERVER_VERSION = "\(v[0-9][^"]*\)".*/\1/p' lib/livekit/devserver.py 2>/dev/null | head -n1)"
VERSION="${VERSION:-v1.13.5}"
WANT="${VERSION#v}"

TOOLS="$ROOT/.tools"
TARGET="$TOOLS/bin/livekit-server"
GOBIN_DIR="$TOOLS/go-bin"

if [[ -n "${LIVEKIT_SERVER_BIN:-}" ]]; then
    if [[ -f "$LIVEKIT_SERVER_BIN" ]]; then
        echo "==> livekit-server: using LIVEKIT_SERVER_BIN=$LIVEKIT_SERVER_BIN"
        exit 0
    fi
    echo "warning: LIVEKIT_SERVER_BIN=$LIVEKIT_SERVER_BIN does not exist; installing into" \
         ".tools/bin instead (unset LIVEKIT_SERVER_BIN to use it)" >&2
fi

installed_version() {
    # Prints the version of $1 ("livekit-server version 1.13.5" -> "1.13.5"), or nothing.
    "$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true
}

if [[ -x "$TARGET" ]] && [[ "$(installed_version "$TARGET")" == "$WANT" ]]; then
    echo "==> livekit-server $WANT already installed (.tools/bin/livekit-server)"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    cat >&2 <<EOF
error: livekit-server $WANT is not installed and Go is not available to build it.
  Either install Go >= 1.22 (from your distribution, e.g. \`apt-get install golang-go\` on a
  recent Debian, or from https://go.dev/dl/) and run this again,
  or set LIVEKIT_SERVER_BIN to the path of an existing livekit-server binary.
EOF
    exit 1
fi

echo "==> building livekit-server $VERSION with $(go version | awk '{print $3}') (first time takes a few minutes)"
mkdir -p "$TOOLS/bin" "$GOBIN_DIR"
# GOPATH / GOMODCACHE keep their defaults (usually ~/go), so the module cache is shared.
GOBIN="$GOBIN_DIR" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/livekit/livekit-server/cmd/server@$VERSION"

# The module's main package is cmd/server, so the binary is called `server`.
if [[ ! -x "$GOBIN_DIR/server" ]]; then
    echo "error: go install finished but $GOBIN_DIR/server is missing" >&2
    exit 1
fi
mv -f "$GOBIN_DIR/server" "$TARGET.tmp"
mv -f "$TARGET.tmp" "$TARGET"

got="$(installed_version "$TARGET")"
if [[ "$got" != "$WANT" ]]; then
    echo "error: installed livekit-server reports version '${got:-unknown}', expected $WANT" >&2
    exit 1
fi
echo "==> installed livekit-server $WANT into .tools/bin/livekit-server"
