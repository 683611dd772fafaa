#!/usr/bin/env bash
# Install what moat needs to build, test and benchmark, from Debian's
# packages only. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
        # build
        gcc meson ninja-build pkg-config libjansson-dev libcap-dev libseccomp-dev libarchive-dev nettle-dev
        libmicrohttpd-dev libsqlite3-dev libhttp-parser-dev
        # the static archives the static-pie programs link: glibc's libc.a,
        # and libacl.a for the part of libarchive.a that moat links
        libc6-dev libacl1-dev
        # sanitizers and fuzzing
        clang libclang-rt-14-dev llvm
        # tests: the test rootfs, the pytest runner, tools the tests call
        busybox-static python3 python3-pytest util-linux iproute2 procps strace
        # peers for side-by-side tests and benchmarks, and the managers
        # that drive moat-runtime in the tests
        crun runc podman containerd docker.io tmux uidmap
        # image tools whose output moat must load, the unpack benchmark peers,
        # the python docker SDK and the inits for --init
        buildah skopeo umoci python3-docker tini catatonit docker-registry
        # the cgroup v2 lane: a VM booting Debian's kernel
        qemu-system-x86 cpio
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
# Package scripts must not start daemons here: dockerd would make a
# bridge and firewall rules in the host's namespace. Tests start the
# daemons they need themselves, with networking off.
if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
