#!/usr/bin/env bash
# The PostgreSQL integration test of edgesep search (docs/SEARCH.md): installs the Debian server
# when it is missing, then runs the test, which starts a throwaway server on 127.0.0.1 and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get install -y --no-install-recommends postgresql
fi
.venv/bin/python -m pytest -q tests/test_search_postgres.py
