#!/usr/bin/env bash
# Installs Debian's OpenSSH server, which the ssh launcher's tests run on 127.0.0.1, if it is
# missing. Where it cannot be installed (not root, not Debian) the tests that need it skip.
set -uo pipefail
[ -x /usr/sbin/sshd ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: sshd is missing and cannot be installed here; the ssh launcher's tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q openssh-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q openssh-server >/dev/null 2>&1; } \
    || echo "note: installing openssh-server failed; the ssh launcher's tests will skip" >&2
exit 0
