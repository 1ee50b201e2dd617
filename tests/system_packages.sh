#!/usr/bin/env bash
# The programs the slow tier drives, by their Debian packages: Chromium (the MLflow UI and the report page; Playwright's
# own browser download needs the internet), Tesseract (doc_cer), ffmpeg (nerfstudio's ns-render on an exported trial,
# HDR phone videos) and PostgreSQL (MLflow on a real PostgreSQL server; tests/servers.py runs it as `postgres`).
# Installs the missing ones with apt-get where it runs as root (a container, CI); elsewhere it names them and stops
# with status 2 before the suite starts, rather than letting their tests fail half an hour in.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/tesseract ] || missing="$missing tesseract-ocr"
[ -x /usr/bin/ffmpeg ] || missing="$missing ffmpeg"
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null || missing="$missing postgresql"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
  echo "installing what the slow tests drive:$missing"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
else
  echo "error: the slow tests drive programs that are missing:$missing (install them: sudo apt-get install$missing" \
    "on Debian or Ubuntu; or run only the fast tier: make test-fast)" >&2
  exit 2
fi
