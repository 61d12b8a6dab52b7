#!/bin/sh
# Install wopibridge on a Debian or Ubuntu host, as deploy/wopibridge.service expects it:
#   - a virtual environment in /opt/wopibridge (Debian's pip refuses system installs, PEP 668),
#     with the wopibridge command at /opt/wopibridge/bin/wopibridge;
#   - a system user and group "wopibridge";
#   - /var/lib/wopibridge (state: secrets, indexes, kept copies) and /srv/wopibridge (files),
#     owned by that user;
#   - /etc/wopibridge/wopibridge.toml (deploy/wopibridge.toml) and the two secrets it names,
#     generated (existing ones are kept);
#   - the unit in /etc/systemd/system.
# Run as root from a checkout:   sudo sh deploy/install-host.sh
# then:                          sudo systemctl enable --now wopibridge
# Needs python3-venv (apt-get install python3-venv). SOURCE (default: this checkout) is what
# pip installs: a checkout, a wheel, or a requirement such as "wopibridge==1.2".
# ROOT=/some/dir installs under that folder instead of / (a package build, a test).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source=${SOURCE:-$(dirname "$here")}
root=${ROOT:-}

python3 -m venv "$root/opt/wopibridge"
"$root/opt/wopibridge/bin/pip" install --quiet --disable-pip-version-check "$source"

if [ -n "$root" ]; then
    prefix="--prefix $root"
else
    prefix=""
fi
# shellcheck disable=SC2086  # $prefix is empty or two words
grep -q '^wopibridge:' "$root/etc/group" 2>/dev/null || groupadd $prefix --system wopibridge
# shellcheck disable=SC2086
grep -q '^wopibridge:' "$root/etc/passwd" 2>/dev/null \
    || useradd $prefix --system --gid wopibridge --home-dir /var/lib/wopibridge \
        --no-create-home --shell /usr/sbin/nologin wopibridge
uid=$(awk -F: '$1 == "wopibridge" {print $3}' "$root/etc/passwd")
gid=$(awk -F: '$1 == "wopibridge" {print $3}' "$root/etc/group")

install -d -m 0750 -o "$uid" -g "$gid" "$root/var/lib/wopibridge" "$root/srv/wopibridge"
install -d -m 0755 "$root/etc/wopibridge" "$root/etc/systemd/system"
if [ ! -e "$root/etc/wopibridge/wopibridge.toml" ]; then
    install -m 0640 -g "$gid" "$here/wopibridge.toml" "$root/etc/wopibridge/wopibridge.toml"
fi
# The secrets the settings name: generated once, readable by the service only.
for name in token_secret iop_secret; do
    if [ ! -e "$root/etc/wopibridge/$name" ]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' \
            >"$root/etc/wopibridge/$name")
        chgrp "$gid" "$root/etc/wopibridge/$name"
        chmod 0640 "$root/etc/wopibridge/$name"
    fi
done
install -m 0644 "$here/wopibridge.service" "$root/etc/systemd/system/wopibridge.service"

if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
fi
echo "installed: $root/opt/wopibridge/bin/wopibridge, unit $root/etc/systemd/system/wopibridge.service"
