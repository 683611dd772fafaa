#!/usr/bin/env bash
# Install what moat needs to build, test and benchmark, from Debian's
# packages only. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
        # build
        gcc meson ninja-build pkg-config libjansson-dev libcap-dev
        # sanitizers and fuzzing
        clang libclang-rt-14-dev llvm
        # tests: the test rootfs, the pytest runner, tools the tests call
        busybox-static python3 python3-pytest util-linux iproute2 procps
        # peers for side-by-side tests and benchmarks
        crun runc
)

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages (${missing[*]}); run as root" >&2
        exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
