#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: on Debian, as root (the tests check real
# owners and modes, run the integration as the wazuh user, and install the packages into a
# throwaway Debian root). Installs what the tests need first; every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: run it as root (sudo scripts/test.sh)" >&2
    exit 1
fi

# Real Wazuh managers have a `wazuh` user and group; the tests give files root:wazuh as the
# installer does.
getent group wazuh >/dev/null || groupadd --system wazuh
getent passwd wazuh >/dev/null || useradd --system --gid wazuh --home-dir /var/ossec --no-create-home --shell /usr/sbin/nologin wazuh

# What the package tests need: dpkg-dev, rpm, debootstrap, lintian, rpmlint; cargo-zigbuild (PyPI).
bash scripts/ci-deps.sh
# The throwaway Debian root of the package tests is cached per day outside the checkout (a CI run
# is a fresh clone); it is verified by checksum before use and rebuilt when in doubt.
export WAZUH_MISP_TEST_ROOTFS_CACHE="${WAZUH_MISP_TEST_ROOTFS_CACHE:-/var/cache/wazuh-misp-tests}"

cargo --version
cargo test --workspace
