#!/bin/bash
# The bash completion (packaging/unbd.bash-completion) completes commands,
# options, option values and attached devices: it is sourced in a bash, and
# COMPREPLY is checked for a few command lines. Its commands and options are
# the ones `unbd [COMMAND] --help` prints, no more, no fewer.
. "$(dirname "$0")/../functions.sh"
completion=$UNBD_SOURCE_DIR/packaging/unbd.bash-completion
export UNBD_STATE_DIR=$TESTDIR/state
mkdir -p "$UNBD_STATE_DIR"
touch "$UNBD_STATE_DIR/3.json" "$UNBD_STATE_DIR/12.json" "$UNBD_STATE_DIR/3.log"

# complete LINE: what bash offers for LINE (the cursor at its end), sorted,
# one per line. Words are split as readline does (COMP_WORDBREAKS has '=').
complete_line() {
  bash --norc --noprofile -c '
    source "$1" || exit 2
    line=$2
    read -ra COMP_WORDS <<<"${line//=/ = }"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line COMP_POINT=${#line}
    _unbd unbd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$completion" "$1"
}
# expect LINE WORD...: bash offers exactly WORD... for LINE.
failures=0
expect() {
  local line=$1 got want; shift
  got=$(complete_line "$line" | xargs)
  want=$(printf '%s\n' "$@" | sort | xargs)
  if [ "$got" = "$want" ]; then
    echo "ok: '$line' -> $got"
  else
    echo "FAIL: '$line' -> '$got', expected '$want'" >&2
    failures=$((failures + 1))
  fi
}
commands=$("$UNBD" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
options_in() { grep -oE '(^|[^[:alnum:]-])--?[[:alpha:]][[:alnum:]-]*' | grep -oE -- '--?[[:alnum:]-]+$' | sort -u; }

expect "unbd " $commands
expect "unbd de" detach
expect "unbd re" recover restart resize
expect "unbd --log-level " trace debug info warn error off
expect "unbd --log-level debug li" list
expect "unbd attach --zero" --zero-copy
expect "unbd attach --zero-copy " auto on off
expect "unbd attach --durability=" replay fail-flush trust-server
expect "unbd attach --durability=f" fail-flush
expect "unbd attach -q " # a number: nothing to offer
expect "unbd detach " /dev/ublkb3 3 /dev/ublkb12 12
expect "unbd detach /dev/ublkb1" /dev/ublkb12
expect "unbd resize 1" 12
expect "unbd recover --foreground " /dev/ublkb3 3 /dev/ublkb12 12
expect "unbd list " # no arguments
expect "unbd nosuch -" # not a command

# The options offered for "unbd [COMMAND] -" are those of --help.
# The options are words: split on purpose.
# shellcheck disable=SC2046
expect "unbd -" $("$UNBD" --help | sed '/^Subcommands:/,$d' | options_in)
for c in $commands; do
  # shellcheck disable=SC2046
  expect "unbd $c -" $("$UNBD" "$c" --help | options_in)
done
[ "$failures" = 0 ] || fail "$failures completion(s) wrong"
echo PASS
