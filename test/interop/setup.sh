#!/usr/bin/env bash
# Installs the Debian tools the interop suite drives (swaks, rbldnsd, openssl,
# systemd's analyze/socket-activate, python3, redis-server and postfix: started privately by
# the state tests on loopback ports with their own config, never as services). Runs
# `apt-get update` once, and only when something is missing, so a prepared machine pays nothing.
set -euo pipefail
need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
command -v rbldnsd >/dev/null 2>&1 || need+=(rbldnsd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
# The console's browser tests: Debian's Chromium (puppeteer-core drives /usr/bin/chromium) and a
# font for its screenshots.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/postfix ] || need+=(postfix)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "interop setup: missing ${need[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
  echo "interop setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # Postfix is only a client driven by the tests with its own config: no system configuration.
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "interop setup: tools present"
