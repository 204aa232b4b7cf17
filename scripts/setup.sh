#!/usr/bin/env bash
# Prepares a checkout to run (`scripts/setup.sh`) or to test (`scripts/setup.sh --test`).
# Idempotent and fast when nothing changed: pip runs only when the requirements files change
# (a stamp in .venv holds their sha256), livekit-server is built only when missing.
set -euo pipefail

usage() {
    echo "usage: scripts/setup.sh [--test]" >&2
    echo "  --test   also install test tools (requirements-dev.txt, chromium for e2e tests)" >&2
}

TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) TEST=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $arg" >&2; usage; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

is_root() { [[ "$(id -u)" == "0" ]]; }

apt_install() {  # apt-get install "$@"; refresh the package lists only when the first try fails
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    fi
}

postgres_bin_dir() {  # the newest /usr/lib/postgresql/<major>/bin with initdb and pg_ctl
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

stop_distribution_clusters() {  # Debian's postinst creates and starts <major>/main; stop it
    local version cluster _rest
    if command -v pg_lsclusters >/dev/null 2>&1; then
        while read -r version cluster _rest; do
            pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
        done < <(pg_lsclusters --no-header 2>/dev/null)
    fi
    if command -v service >/dev/null 2>&1; then
        service postgresql stop >/dev/null 2>&1 || true
    fi
}

# Python >= 3.11 -------------------------------------------------------------------------------

python_ok() {  # $1 is an interpreter that runs and is >= 3.11
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

venv_usable() {  # the existing .venv runs, is >= 3.11 and has pip
    [[ -x "$VPY" ]] && python_ok "$VPY" && "$VPY" -m pip --version >/dev/null 2>&1
}

if ! venv_usable; then
    if ! PY="$(find_python)"; then
        echo "error: Python >= 3.11 is required (looked for python3.11 and python3)." >&2
        echo "  Install it (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) and run again." >&2
        exit 1
    fi
    if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        # Debian splits venv/ensurepip into python3-venv (python3.X-venv).
        pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        if is_root && command -v apt-get >/dev/null 2>&1; then
            echo "==> installing python${pyver}-venv (the venv module is missing)"
            apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python${pyver}-venv" \
                || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
        else
            echo "error: the Python venv module is missing for $PY." >&2
            echo "  On Debian/Ubuntu run: sudo apt-get install python${pyver}-venv" >&2
            exit 1
        fi
    fi
    if [[ -e "$VENV" ]]; then
        echo "==> recreating .venv (the existing one is broken or too old)"
        rm -rf "$VENV"
    fi
    echo "==> creating .venv with $("$PY" --version 2>&1) ($PY)"
    "$PY" -m venv "$VENV"
fi

# Python packages, only when the requirements changed ------------------------------------------

if [[ "$TEST" == 1 ]]; then
    MODE=test
    REQ=requirements-dev.txt
    HASHED=(requirements.txt requirements-dev.txt)
else
    MODE=runtime
    REQ=requirements.txt
    HASHED=(requirements.txt)
fi

requirements_hash() {  # sha256 of the given requirements files plus the interpreter version
    { "$VPY" --version 2>&1; for f in "$@"; do echo "## $f"; cat "$f"; done; } \
        | sha256sum | cut -d' ' -f1
}

STAMP="$VENV/.setup-$MODE.sha256"
want="$(requirements_hash "${HASHED[@]}")"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "==> Python packages up to date ($REQ)"
else
    echo "==> upgrading pip"
    "$VPY" -m pip install --quiet --upgrade pip
    echo "==> installing Python packages ($REQ)"
    "$VPY" -m pip install --quiet --progress-bar off -r "$REQ"
    echo "$want" > "$STAMP"
    if [[ "$MODE" == test ]]; then
        # requirements-dev.txt includes requirements.txt, so the runtime set is current too.
        requirements_hash requirements.txt > "$VENV/.setup-runtime.sha256"
    fi
fi

# livekit-server -------------------------------------------------------------------------------

echo "==> checking livekit-server"
bash "$ROOT/scripts/install-livekit-server.sh"

# Browser assets (npm) -------------------------------------------------------------------------
# Served by the app from frontend/node_modules (no CDN); installed from the lock file only when it
# changed. --ignore-scripts: nothing from npm runs at install (swagger-ui-dist's dependency
# @scarf/scarf would report the install to its vendor).

FRONTEND="$ROOT/frontend"
if ! command -v npm >/dev/null 2>&1; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Node.js and npm with apt-get (for the browser assets)"
        apt_install --no-install-recommends nodejs npm
    else
        echo "error: npm is missing (the browser assets come from npm packages)." >&2
        echo "  On Debian run: sudo apt-get install nodejs npm   (then run this again)" >&2
        exit 1
    fi
fi
NPM_STAMP="$FRONTEND/node_modules/.setup.sha256"
npm_want="$(cat "$FRONTEND/package.json" "$FRONTEND/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$NPM_STAMP" && "$(cat "$NPM_STAMP")" == "$npm_want" ]]; then
    echo "==> browser assets up to date (frontend/package-lock.json)"
else
    echo "==> installing browser assets (npm ci in frontend/)"
    (cd "$FRONTEND" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$npm_want" > "$NPM_STAMP"
fi

# Test-only system tools -----------------------------------------------------------------------

if [[ "$TEST" == 1 ]]; then
    if [[ -x /usr/bin/chromium ]]; then
        echo "==> chromium present (/usr/bin/chromium)"
    elif is_root && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium with apt-get (for the e2e tests; takes a few minutes)"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    else
        echo "warning: /usr/bin/chromium is missing, so the e2e tests cannot run." >&2
        echo "  On Debian run: sudo apt-get install chromium   (then run this again)" >&2
    fi

    # PostgreSQL server binaries: the database tests initdb a private cluster of their own
    # (tests/postgres.py), so the distribution's cluster must not be left running as a service.
    if postgres_bin_dir >/dev/null; then
        echo "==> PostgreSQL present ($(postgres_bin_dir))"
    elif is_root && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing PostgreSQL with apt-get (for the database tests)"
        apt_install --no-install-recommends postgresql
        stop_distribution_clusters
        if ! postgres_bin_dir >/dev/null; then
            echo "error: apt-get installed postgresql but no initdb/pg_ctl is under /usr/lib/postgresql/*/bin" >&2
            exit 1
        fi
    else
        echo "warning: PostgreSQL (initdb, pg_ctl) is missing, so the PostgreSQL tests cannot run." >&2
        echo "  On Debian run: sudo apt-get install postgresql   (then run this again)" >&2
    fi
    # Redis (scale-path tests) is not needed yet: nothing installs it here.
fi

# Runtime folders ------------------------------------------------------------------------------

mkdir -p "$ROOT/data"
if [[ "$TEST" == 1 ]]; then
    echo "==> setup done (with test tools)"
else
    echo "==> setup done"
fi
