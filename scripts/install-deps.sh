#!/bin/bash
# Installs the Debian (bookworm) packages unbd's build, tests and VM need.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail
packages=(
  # build
  cmake g++ pkg-config liburing-dev libasio-dev libspdlog-dev doctest-dev
  libcli11-dev nlohmann-json3-dev libnbd-dev libssl-dev
  # fuzz targets (tests/fuzz): clang 14 and its libFuzzer/sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # tests: real servers, the libnbd oracle, block tools
  nbdkit libnbd-bin python3-libnbd qemu-utils nbd-server nbd-client fio
  e2fsprogs util-linux procps iproute2 psmisc jq
  # tests: TLS credentials (certtool, psktool) for nbds://
  gnutls-bin
  # tests: the systemd unit (systemd-analyze verify)
  systemd
  # man pages (go-md2man: markdown to roff), their lint (groff, man-db,
  # mandoc), bash completion, the .deb (cpack needs dpkg-dev's
  # dpkg-shlibdeps) and its check (lintian)
  go-md2man groff-base man-db mandoc bash-completion dpkg-dev lintian
  # the container image (containers/build.sh) and its tests: podman with
  # runc (this host) and crun (the VM guest), catatonit for --init
  podman runc crun catatonit
  # the metrics endpoint's check: promtool (prometheus)
  prometheus
  # udev: the VM test of /dev/unbd/NAME runs systemd-udevd with unbd's rule
  udev
  # the test VM (tests/vm): qemu under TCG, busybox initramfs, depmod
  qemu-system-x86 busybox-static kmod xz-utils file
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
