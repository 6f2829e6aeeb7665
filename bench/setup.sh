#!/usr/bin/env bash
# Installs what `npm run bench` drives: Debian postfix (only for its smtp-source load
# generator and smtp-sink; the postfix service is never started) and, into the git-ignored
# bench/peers folder, the Node peers Haraka and smtp-server. Idempotent: a prepared machine pays nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench setup: /usr/sbin/smtp-source missing and not root; run: apt-get install postfix" >&2
    exit 1
  fi
  echo "bench setup: installing postfix (binaries only; the service is not started)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Pre-answer debconf so the install does not ask about mail configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  # policy-rc.d exit 101 keeps dpkg from starting the service during the install.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postfix >/dev/null || {
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if [ ! -f "$here/peers/node_modules/Haraka/package.json" ] || [ ! -f "$here/peers/node_modules/smtp-server/package.json" ]; then
  echo "bench setup: installing Haraka and smtp-server into bench/peers" >&2
  mkdir -p "$here/peers"
  [ -f "$here/peers/package.json" ] || echo '{"name":"fakemx-bench-peers","private":true}' > "$here/peers/package.json"
  npm install --prefix "$here/peers" --no-audit --no-fund --loglevel=error Haraka smtp-server >/dev/null
fi

if [ ! -f "$here/../dist/cli.js" ]; then
  echo "bench setup: building fakemx" >&2
  (cd "$here/.." && npm run build >/dev/null)
fi
echo "bench setup: tools present (smtp-source, smtp-sink, Haraka, smtp-server)"
