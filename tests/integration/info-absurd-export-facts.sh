#!/usr/bin/env bash
# Absurd export facts from a scripted server, seen through `unbd info`. The
# handshake refuses what would break the data path or that no block device
# can be (one line on stderr, exit 1); what the NBD spec allows, or leaves to
# the client to ignore or round, is shown as the server said it (exit 0).
# `attach` then decides from the same facts (ublk/device_params.cpp, its
# unit tests; the attach column says what it does).
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

# case                      | server args                              | exit | info prints (exit 0) or says (exit 1)        | attach
cases=(
  "size 0                    | --size 0                                 | 0 | export-size: 0 (0)                            | refused: smaller than one block"
  "size not a block multiple | --size 5000 --block 4096,4096,1048576   | 0 | warning: the size is not a multiple of the minimum block size 4096 | rounds down to 4096, warns"
  "size 2^63-1               | --size 9223372036854775807              | 0 | export-size: 9223372036854775807              | rounds down to 2^63-512, warns"
  "size 2^63                 | --size 9223372036854775808              | 1 | announces an export of 9223372036854775808 bytes, more than the 2^63-1 | refused (same handshake)"
  "size 2^64-1               | --size 18446744073709551615             | 1 | announces an export of 18446744073709551615 bytes, more than the 2^63-1 | refused (same handshake)"
  "minimum above the maximum | --block 65536,65536,4096                | 1 | maximum payload below the minimum block size (minimum 65536, preferred 65536, maximum 4096) | refused (same handshake)"
  "maximum below the minimum | --block 4096,4096,512                   | 1 | maximum payload below the minimum block size (minimum 4096 | refused (same handshake)"
  "maximum below 512         | --block 1,256,256                       | 0 | block_size_maximum: 256                       | refused: maximum request below the 512-byte block"
  "minimum 0                 | --block 0,4096,1048576                  | 1 | bad minimum block size (minimum 0,            | refused (same handshake)"
  "minimum not a power of 2  | --block 3000,4096,1048576               | 1 | bad minimum block size (minimum 3000,         | refused (same handshake)"
  "minimum above 64 KiB      | --block 131072,131072,1048576           | 1 | bad minimum block size (minimum 131072,       | refused (same handshake)"
  "minimum 64 KiB            | --block 65536,65536,1048576             | 0 | block_size_minimum: 65536                     | refused: block above the 4096 Linux allows"
  "preferred not a power of 2| --block 512,3000,1048576                | 1 | bad preferred block size (minimum 512, preferred 3000, | refused (same handshake)"
  "preferred below minimum   | --block 4096,512,1048576                | 1 | bad preferred block size (minimum 4096, preferred 512, | refused (same handshake)"
  "preferred above 32 MiB    | --block 512,67108864,4294967295         | 0 | block_size_preferred: 67108864                | a hint: io_opt clamped to the largest request"
  "preferred above maximum   | --block 512,67108864,33554432           | 0 | block_size_preferred: 67108864                | a hint: io_opt clamped to the largest request"
  "maximum not a power of 2  | --block 512,4096,1000000                | 0 | block_size_maximum: 1000000                   | requests up to 999936 bytes (whole blocks)"
)

n=0
for row in "${cases[@]}"; do
  IFS='|' read -r name args want_rc want_text _attach <<<"$row"
  name=$(trim "$name"); want_rc=$(trim "$want_rc"); want_text=$(trim "$want_text")
  # shellcheck disable=SC2086  # the server arguments are words
  serve_scripted "case$n" $args
  n=$((n + 1))
  rc=0; "$UNBD" info "$URI" >"$TESTDIR/out" 2>"$STDERR" || rc=$?
  [ "$rc" = "$want_rc" ] || fail "$name: exit status $rc, expected $want_rc; stderr: $(cat "$STDERR")"
  if [ "$want_rc" = 0 ]; then
    grep -qF -- "$want_text" "$TESTDIR/out" || fail "$name: info does not show '$want_text': $(cat "$TESTDIR/out")"
  else
    [ "$(wc -l <"$STDERR")" = 1 ] || fail "$name: expected one line on stderr, got: $(cat "$STDERR")"
    grep -qF -- "$want_text" "$STDERR" || fail "$name: stderr lacks '$want_text': $(cat "$STDERR")"
    [ ! -s "$TESTDIR/out" ] || fail "$name: refused, yet printed: $(cat "$TESTDIR/out")"
  fi
  echo "ok: $name -> exit $rc"
done
