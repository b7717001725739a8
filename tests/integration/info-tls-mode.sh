#!/usr/bin/env bash
# --tls-mode / tls-mode=: auto and userspace run the user-space tunnel as
# before (TLS 1.3 where the server offers it); ktls (TLS 1.2 or 1.3) either
# really gets the kernel's TLS both ways or fails with one line saying why
# (this host's kernel has no CONFIG_TLS; the VM case attach-ktls.sh is the
# working side); kTLS on a Unix socket and bad values are refused clearly.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/tls.sh"

make_tls_credentials localhost
start_x509_nbdkit tls memory 1M
port=$X509_PORT
uri="nbds://localhost:$port/?tls-certificates=$PKI"

tls_line() { "$UNBD" info "$@" | sed -n 's/^\ttls: //p'; }
[[ $(tls_line "$uri") == "userspace (TLSv1.3, x509, "* ]] || fail "auto: $(tls_line "$uri")"
[[ $(tls_line --tls-mode=auto "$uri") == "userspace (TLSv1.3, x509, "* ]] || fail "--tls-mode=auto"
[[ $(tls_line --tls-mode=userspace "$uri") == "userspace (TLSv1.3, x509, "* ]] || fail "--tls-mode=userspace"
[[ $(tls_line "$uri&tls-mode=userspace") == "userspace (TLSv1.3, x509, "* ]] || fail "tls-mode=userspace"
"$UNBD" info --tls-mode=userspace "$uri" | grep -q $'^\turi: .*&tls-mode=userspace$' ||
  fail "the URI does not keep the mode: $("$UNBD" info --tls-mode=userspace "$uri")"

# --tls-mode=ktls against the server at $1 expecting TLS version $2.
check_ktls() {
  local u="nbds://localhost:$1/?tls-certificates=$PKI"
  if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || modprobe -q tls 2>/dev/null; then
    echo "this kernel has kTLS: --tls-mode=ktls must work (TLS $2)"
    [[ $(tls_line --tls-mode=ktls "$u") == "ktls (TLSv$2, x509, "* ]] || fail "ktls: $(tls_line --tls-mode=ktls "$u")"
  else
    echo "this kernel has no kTLS: --tls-mode=ktls must say so (TLS $2)"
    expect_fail "ktls without kernel TLS" "$UNBD" info --tls-mode=ktls "$u"
    grep -qx "unbd: --tls-mode=ktls: kernel TLS is not possible with nbds://localhost:$1/: the kernel has no TLS support (no 'tls' in /proc/sys/net/ipv4/tcp_available_ulp: CONFIG_TLS, modprobe tls) (--tls-mode=userspace works without it)" \
      "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
    expect_fail "tls-mode=ktls in the URI" "$UNBD" info "$u&tls-mode=ktls"
    grep -q "kernel TLS is not possible" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
  fi
}
check_ktls "$port" 1.3

expect_fail "ktls on a Unix socket" "$UNBD" info --tls-mode=ktls "nbds+unix:///?socket=$TESTDIR/none.sock"
grep -qx "unbd: --tls-mode=ktls needs TCP: the kernel's TLS works on TCP sockets only, and nbds+unix:///?socket=$TESTDIR/none.sock is a Unix socket (--tls-mode=userspace works there)" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "bad mode" "$UNBD" info --tls-mode=kernel "$uri"
grep -q "tls-mode: kernel not in {auto,ktls,userspace}" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "bad mode in the URI" "$UNBD" info "$uri&tls-mode=kernel"
grep -q "bad 'tls-mode' in the URI 'kernel'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "mode without TLS" "$UNBD" info --tls-mode=ktls "nbd://127.0.0.1:$port/"
grep -q "TLS options need TLS" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

# A TLS 1.2 server: userspace says 1.2 too.
printf '[overrides]\ndisabled-version = tls1.3\n' >"$TESTDIR/tls12.conf"
GNUTLS_SYSTEM_PRIORITY_FILE=$TESTDIR/tls12.conf start_x509_nbdkit tls12 memory 1M
port12=$X509_PORT
[[ $(tls_line --tls-mode=userspace "nbds://localhost:$port12/?tls-certificates=$PKI") == "userspace (TLSv1.2, x509, "* ]] ||
  fail "TLS 1.2 userspace"
check_ktls "$port12" 1.2
echo PASS
