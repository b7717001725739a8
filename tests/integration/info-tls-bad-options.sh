#!/usr/bin/env bash
# Wrong TLS URIs and options are refused (exit 2) before anything connects.
. "$(dirname "$0")/../functions.sh"

usage() {  # usage MESSAGE-PART ARGS...
  local want=$1 rc=0; shift
  "$UNBD" "$@" 2>"$STDERR" >/dev/null || rc=$?
  [ "$rc" = 2 ] || fail "'$*': exit $rc, expected 2 ($(cat "$STDERR"))"
  grep -qF -- "$want" "$STDERR" || fail "'$*': unexpected message: $(cat "$STDERR")"
}
usage "needs TLS: use an nbds:// or nbds+unix:// URI" info "nbd://127.0.0.1:1/?tls-certificates=/x"
usage "TLS options need TLS" info --tls-psk /x "nbd://127.0.0.1:1/"
usage "TLS options need TLS" info --tls=off --tls-hostname h "nbd://127.0.0.1:1/"
usage "--tls=off contradicts the nbds:// URI" info --tls=off "nbds://127.0.0.1:1/"
usage "not both" info --tls-psk /x "nbds://127.0.0.1:1/?tls-certificates=/d"
usage "tls-type=anon (anonymous TLS) is not supported" info "nbds://127.0.0.1:1/?tls-type=anon"
usage "bad value 'maybe' for 'tls-verify-peer'" info "nbds://127.0.0.1:1/?tls-verify-peer=maybe"
usage "--tls-verify-peer excludes --no-tls-verify-peer" info --tls-verify-peer --no-tls-verify-peer "nbds://127.0.0.1:1/"
usage "--tls: on not in {require,off}" info --tls=on "nbds://127.0.0.1:1/"
usage "bad port '99999'" info "nbds://h:99999/"
