#!/usr/bin/env bash
# CI step: the PostgreSQL sweep tests (pytest -m postgres) against a real server.
#
# Installs PostgreSQL with apt-get when it is missing (Debian's postgresql package; needs root)
# and the psycopg driver (the genlab[postgres] extra), then runs the tests; each test starts
# its own private server in a temporary directory (tests/cli/postgres_server.py). Where
# PostgreSQL cannot be installed, it says why and exits 0, so CI reports the skip instead of
# failing on a machine without it. GENLAB_TEST_POSTGRES_URL points the tests at a server of
# your own instead.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

have_server() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if [ -z "${GENLAB_TEST_POSTGRES_URL:-}" ] && ! have_server; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ci_postgres: installing PostgreSQL (apt-get install postgresql)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
      >/dev/null 2>&1 || echo "ci_postgres: apt-get install postgresql failed"
  fi
fi
if [ -z "${GENLAB_TEST_POSTGRES_URL:-}" ] && ! have_server; then
  echo "ci_postgres: SKIPPED: PostgreSQL is not installed and could not be installed here" \
       "(needs apt-get as root); install the postgresql package to run pytest -m postgres"
  exit 0
fi
if ! "$PYTHON" -c "import psycopg" 2>/dev/null; then
  "$PYTHON" -m pip install -q -e '.[postgres]' || {
    echo "ci_postgres: SKIPPED: could not install the psycopg driver (pip install 'genlab[postgres]')"
    exit 0
  }
fi
exec "$PYTHON" -m pytest -q -m postgres
