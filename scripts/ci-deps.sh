#!/bin/sh
# scripts/ci-deps.sh: installs everything the package build (scripts/package.sh) and the package
# tests (tests/packages.rs) need on a fresh Debian 12 machine, as root. Idempotent: a second run
# changes nothing and contacts no registry when everything is already there.
#
#   Debian packages: dpkg-dev (dpkg-deb), rpm (rpmbuild, rpm --root), debootstrap (the throwaway
#   Debian root), lintian, rpmlint, binutils (objdump), xz-utils/zstd, fakeroot, util-linux (unshare,
#   setpriv), debian-archive-keyring (debootstrap's signature check), ca-certificates.
#   PyPI: ziglang and cargo-zigbuild (builds the binary against glibc 2.17).
set -eu

[ "$(id -u)" = 0 ] || { echo "ci-deps.sh: run as root" >&2; exit 1; }

APT_PACKAGES="debootstrap rpm dpkg-dev lintian rpmlint binutils xz-utils zstd fakeroot util-linux debian-archive-keyring ca-certificates"
# Pinned so that every CI run builds with the same linker; bump them together, deliberately.
PIP_PACKAGES="ziglang==0.15.2 cargo-zigbuild==0.24.1"

missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "ci-deps: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "ci-deps: Debian packages already installed"
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "ci-deps: python3 is needed for pip (apt-get install python3-pip)" >&2
    exit 1
fi
pip_missing=""
for spec in $PIP_PACKAGES; do
    name=${spec%%==*}
    want=${spec#*==}
    have=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [ "$have" = "$want" ] || pip_missing="$pip_missing $spec"
done
if [ -n "$pip_missing" ]; then
    echo "ci-deps: installing from PyPI:$pip_missing"
    # shellcheck disable=SC2086
    python3 -m pip install -q --disable-pip-version-check $pip_missing 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages $pip_missing
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
else
    echo "ci-deps: ziglang and cargo-zigbuild already installed"
fi
echo "ci-deps: ready ($(rpmbuild --version), $(dpkg-deb --version | head -n1), debootstrap $(dpkg-query -W -f='${Version}' debootstrap))"
