#!/usr/bin/env bash
# containers/build.sh makes an OCI archive of the unbd binary under test with
# only what it needs, and that image runs: podman (private storage, runc --
# crun cannot run on this host's hybrid cgroups) loads it, `unbd --version`
# in it names the same version as the binary, and `unbd info` in it reads an
# nbdkit export on the host's network, in plain text and over TLS. Its file
# list is exactly the binary, its TLS module, the libraries ldd names for
# them, their copyright files and the image note: no shell, no package manager.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/tls.sh"
command -v podman >/dev/null || fail "podman is missing (scripts/install-deps.sh installs it)"

archive=$(bash "$UNBD_SOURCE_DIR/containers/build.sh" --binary "$UNBD" --output "$TESTDIR/unbd.oci.tar" \
  --tag localhost/unbd-test:latest 2>"$TESTDIR/build.err") || { cat "$TESTDIR/build.err" >&2; fail "containers/build.sh failed"; }
[ "$archive" = "$TESTDIR/unbd.oci.tar" ] && [ -s "$archive" ] || fail "build.sh printed '$archive', not the archive it was asked for"
grep 'containers/build.sh:' "$TESTDIR/build.err"

# The archive is an OCI layout: one manifest, one layer holding the rootfs.
mkdir "$TESTDIR/oci" "$TESTDIR/rootfs"
tar -xf "$archive" -C "$TESTDIR/oci"
jq -e '.manifests | length == 1' "$TESTDIR/oci/index.json" >/dev/null || fail "the archive's index.json has not one manifest"
manifest=$(jq -r '.manifests[0].digest' "$TESTDIR/oci/index.json")
layers=$(jq -r '.layers[].digest' "$TESTDIR/oci/blobs/${manifest/://}")
[ "$(wc -l <<<"$layers")" = 1 ] || fail "the image has $(wc -l <<<"$layers") layers, expected 1"
tar -xf "$TESTDIR/oci/blobs/${layers/://}" -C "$TESTDIR/rootfs"
config=$(jq -r '.config.digest' "$TESTDIR/oci/blobs/${manifest/://}")
[ "$(jq -c '.config.Entrypoint' "$TESTDIR/oci/blobs/${config/://}")" = '["/usr/bin/unbd"]' ] ||
  fail "the image's entrypoint is $(jq -c '.config.Entrypoint' "$TESTDIR/oci/blobs/${config/://}")"

# Exactly: the binary, its TLS module, their ldd libraries, copyright
# files, the image note.
(cd "$TESTDIR/rootfs" && find . -type f | sed 's|^\./|/|' | sort) >"$TESTDIR/files"
{
  echo /usr/bin/unbd
  echo /usr/lib/unbd/unbd-tls.so
  echo /usr/share/doc/unbd/image.txt
  { ldd "$UNBD"; ldd "$(dirname "$UNBD")/unbd-tls.so"; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    sed 's|^/usr/|/|; s|^|/usr|'
} | sort -u >"$TESTDIR/expected"
grep -v '^/usr/share/doc/[^/]*/copyright$' "$TESTDIR/files" >"$TESTDIR/files.nocopyright"
diff -u "$TESTDIR/expected" "$TESTDIR/files.nocopyright" || fail "the image holds other files than the binary and its libraries"
grep -q '^/usr/share/doc/libc6/copyright$' "$TESTDIR/files" || fail "the image lacks libc6's copyright file"
[ ! -e "$TESTDIR/rootfs/bin/sh" ] || fail "the image has a shell"

# It runs. podman as found on this host: runc, cgroupfs, rlimits within the
# machine's hard limits, storage private to this test.
cat >"$TESTDIR/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
export CONTAINERS_CONF=$TESTDIR/containers.conf
pod=(podman --root "$TESTDIR/storage" --runroot "$TESTDIR/run" --storage-driver vfs)
cleanup_fn "${pod[*]} rmi -a -f >/dev/null 2>&1"
"${pod[@]}" load -q -i "$archive" >/dev/null || fail "podman load of the archive failed"

want=$("$UNBD" --version)
got=$("${pod[@]}" run --rm --network none localhost/unbd-test:latest --version) || fail "unbd --version in the image failed"
[ "$got" = "$want" ] || fail "the image says '$got', the binary '$want'"

port=$(pick_port)
start_nbdkit -P "$TESTDIR/nbdkit.pid" -i 127.0.0.1 -p "$port" memory 3M
"${pod[@]}" run --rm --network host localhost/unbd-test:latest info --json "nbd://127.0.0.1:$port/" >"$TESTDIR/info.json" ||
  fail "unbd info in the image failed"
[ "$(jq -r .size_bytes "$TESTDIR/info.json")" = 3145728 ] || fail "unbd info in the image: $(cat "$TESTDIR/info.json")"

# TLS (a module the binary loads, with OpenSSL from the image): PSK over TCP.
make_tls_credentials
tls_port=$(pick_port)
start_nbdkit -P "$TESTDIR/nbdkit-tls.pid" -i 127.0.0.1 -p "$tls_port" --tls=require --tls-psk="$PKI/keys.psk" memory 2M
"${pod[@]}" run --rm --network host -v "$PKI/keys.psk:/keys.psk:ro" localhost/unbd-test:latest \
  info --json "nbds://alice@127.0.0.1:$tls_port/?tls-psk-file=/keys.psk" >"$TESTDIR/info-tls.json" ||
  fail "unbd info over TLS in the image failed"
jq -e '.size_bytes == 2097152 and (.tls | startswith("userspace (TLSv1.3, psk, "))' "$TESTDIR/info-tls.json" >/dev/null ||
  fail "unbd info over TLS in the image: $(cat "$TESTDIR/info-tls.json")"

echo "PASS: image of $(wc -l <"$TESTDIR/files") files ($(du -sk "$TESTDIR/rootfs" | cut -f1) KiB) runs $got"
