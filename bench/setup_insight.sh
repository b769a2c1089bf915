#!/bin/sh
# Installs the real programs that bench/insight.py's case studies run (Debian 12 packages).
# Idempotent: packages already installed are left as they are; nothing is started or enabled
# (insight.py starts private servers in temporary directories and stops them itself).
#
#   sudo sh bench/setup_insight.sh
#
# Not part of .ci/run: CI does not run the evaluation.
set -eu

PKGS="socat redis-server redis-tools nginx pigz wrk uwsgi-core uwsgi-plugin-python3 rt-tests linux-perf gcc make gzip postgresql-15 postgresql-client-15"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "setup_insight: all packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup_insight: missing:$missing; run as root" >&2
    exit 1
fi
echo "setup_insight: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
# a distribution's own service (if an init started one) is not what the evaluation measures
for svc in redis-server nginx; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
done
echo "setup_insight: done"
