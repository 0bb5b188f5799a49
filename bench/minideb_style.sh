#!/usr/bin/env bash
# The reference build for bench/base_build.py: a Debian root made the way
# minideb makes its images (debootstrap minbase, apt-get upgrade against the
# security and updates suites, then minideb's documented trims), written as a
# tar. Usage: minideb_style.sh SUITE MIRROR SECURITY_MIRROR OUT.tar
set -euo pipefail
suite=$1 mirror=$2 security=$3 out=$4
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase "$suite" "$root" "$mirror" >/dev/null
cat > "$root/etc/apt/sources.list" <<LIST
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
LIST
chroot "$root" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get upgrade -qq -y >/dev/null
chroot "$root" apt-get clean

# minideb's trims: whole directories, then documentation except copyright files.
for dir in usr/share/man var/cache/apt var/lib/apt/lists usr/share/locale var/log usr/share/info; do
    rm -rf "${root:?}/$dir"/*
done
rm -f "$root/var/cache/ldconfig/aux-cache"
find "$root/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
: > "$root/etc/resolv.conf"
tar --sort=name --numeric-owner -C "$root" -cf "$out" .
