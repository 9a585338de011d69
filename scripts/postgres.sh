#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries (initdb, pg_ctl) are installed, for the tests that
# start a throwaway cluster on 127.0.0.1 (tests/pg.py). Debian/Ubuntu: apt-get install postgresql.
# MM_LITELLM_SKIP_POSTGRES=1 skips this (the PostgreSQL tests then skip, saying why).
set -euo pipefail
if [ "${MM_LITELLM_SKIP_POSTGRES:-0}" = "1" ]; then
  echo "scripts/postgres.sh: MM_LITELLM_SKIP_POSTGRES=1, not installing PostgreSQL" >&2
  exit 0
fi
find_initdb() {
  command -v initdb 2>/dev/null && return 0
  ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}
if [ -n "$(find_initdb)" ]; then
  echo "scripts/postgres.sh: PostgreSQL found: $(find_initdb)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/postgres.sh: no initdb and no apt-get; install PostgreSQL's server package yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "scripts/postgres.sh: not root and no sudo; cannot install postgresql" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || true
if $SUDO apt-get -y -q install postgresql; then
  echo "scripts/postgres.sh: installed: $(find_initdb)" >&2
else  # not fatal: the PostgreSQL tests then skip and print why
  echo "scripts/postgres.sh: could not install postgresql; the PostgreSQL tests will be skipped" >&2
fi
