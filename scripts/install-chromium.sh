#!/usr/bin/env bash
# Debian's Chromium for the report's browser test (tests/browser.py): installed when missing, as root.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "install-chromium: Debian's chromium is needed for the report's browser test (apt-get install chromium)" >&2
fi
