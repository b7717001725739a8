#!/bin/bash
# containers/build.sh [--binary PATH] [--output FILE] [--tag NAME:TAG]
#
# Builds the unbd runtime image (containers/Containerfile) and writes it as
# an OCI archive, without any registry: the image is FROM scratch, its
# rootfs is the unbd binary, its TLS module, and every library `ldd` names for them (at the same
# paths, Debian's merged-/usr layout), with the Debian copyright file of the
# package each library came from. podman builds it with --pull=never in a
# private, throw-away storage (vfs driver), so the caller's own podman
# storage is not touched; load the result where you need it:
#
#   podman load -i build/default/containers/unbd-<version>.oci.tar
#
# Defaults: --binary build/default/unbd, --tag localhost/unbd:<version>,
# --output build/default/containers/unbd-<version>.oci.tar (<version> from
# `unbd --version`). Prints the archive's path on stdout.
# Needs: podman (Debian's 4.3 works), ldd, dpkg-query. No container runtime
# is used: the Containerfile has no RUN step.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
binary=$root/build/default/unbd
output= tag=
die() { echo "containers/build.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary=$2; shift 2 ;;
	--output) output=$2; shift 2 ;;
	--tag) tag=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[ -x "$binary" ] || die "no unbd binary at $binary (build it first: cmake --preset default && cmake --build --preset default)"
command -v podman >/dev/null || die "podman is missing (apt-get install podman)"

version=$("$binary" --version | awk '{print $2; exit}')
[ -n "$version" ] || die "$binary --version printed no version"
: "${tag:=localhost/unbd:$version}"
: "${output:=$(dirname "$binary")/containers/unbd-$version.oci.tar}"
mkdir -p "$(dirname "$output")"

work=$(mktemp -d "${TMPDIR:-/tmp}/unbd-image.XXXXXX")
cleanup() {
	# vfs layers are plain directories owned by root; the storage is ours alone.
	podman "${storage[@]}" rmi -a -f >/dev/null 2>&1 || true
	rm -rf "$work"
}
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
trap cleanup EXIT

# ---- the rootfs: the binary, its libraries, their copyright files --------
rootfs=$work/context/rootfs
mkdir -p "$rootfs"/{usr/bin,usr/lib,usr/lib64,run/unbd,tmp,etc}
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib64 "$rootfs/lib64"
ln -s usr/bin "$rootfs/bin"
chmod 1777 "$rootfs/tmp"
install -m 755 "$binary" "$rootfs/usr/bin/unbd"
strip --strip-unneeded "$rootfs/usr/bin/unbd" 2>/dev/null || true
# TLS is a module the binary loads from ../lib/unbd (src/nbd/tls_module.h).
tls_module=$(dirname "$binary")/unbd-tls.so
[ -f "$tls_module" ] || die "no TLS module at $tls_module (build it: cmake --build --preset default)"
install -D -m 644 "$tls_module" "$rootfs/usr/lib/unbd/unbd-tls.so"
strip --strip-unneeded "$rootfs/usr/lib/unbd/unbd-tls.so" 2>/dev/null || true

# `ldd` lines: "libx.so.N => /path (addr)" and "/lib64/ld-linux... (addr)".
mapfile -t libs < <({ ldd "$binary"; ldd "$tls_module"; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ ${#libs[@]} -gt 0 ] || die "ldd found no libraries in $binary (is it a dynamic executable?)"
packages=()
for lib in "${libs[@]}"; do
	[ -e "$lib" ] || die "ldd names $lib, which does not exist"
	# /lib is /usr/lib on Debian 12; keep the path the loader will ask for.
	dest=$rootfs/usr/${lib#/usr/}
	dest=${dest/\/usr\/usr\//\/usr\/}
	mkdir -p "$(dirname "$dest")"
	cp -L "$lib" "$dest"
	pkg=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null || true)
	pkg=${pkg%%:*}
	[ -n "$pkg" ] && packages+=("$pkg")
done
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
	if [ -f "/usr/share/doc/$pkg/copyright" ]; then
		mkdir -p "$rootfs/usr/share/doc/$pkg"
		cp "/usr/share/doc/$pkg/copyright" "$rootfs/usr/share/doc/$pkg/"
	fi
done
mkdir -p "$rootfs/usr/share/doc/unbd"
printf 'unbd %s\nlibraries from Debian packages: %s\n' "$version" \
	"$(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')" >"$rootfs/usr/share/doc/unbd/image.txt"

# ---- build and save -----------------------------------------------------
cp "$here/Containerfile" "$work/context/Containerfile"
podman "${storage[@]}" build --pull=never --quiet --format oci \
	--build-arg "UNBD_VERSION=$version" -t "$tag" -f "$work/context/Containerfile" "$work/context" >&2
rm -f "$output.tmp"
podman "${storage[@]}" save --format oci-archive -o "$output.tmp" "$tag" >&2
mv "$output.tmp" "$output"
size=$(podman "${storage[@]}" image inspect --format '{{.Size}}' "$tag")
echo "containers/build.sh: $tag, $((size / 1024)) KiB unpacked, archive $(stat -c %s "$output") bytes" >&2
echo "$output"
