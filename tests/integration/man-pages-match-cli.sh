#!/bin/bash
# The man pages (man/*.8.md, built by go-md2man) match the CLI: every
# command `unbd --help` lists has a page and is named in unbd(8); every
# option `unbd [COMMAND] --help` prints is in that command's page, and every
# option a page describes exists. Each page renders without a warning
# (groff -ww, man --warnings as lintian runs it, mandoc -T lint) and carries
# the binary's version. A page with an option taken out is caught, so the
# check works.
. "$(dirname "$0")/../functions.sh"
man_dir=$UNBD_BUILD_DIR/man
[ -f "$man_dir/unbd.8" ] ||
  fail "no man pages in $man_dir (go-md2man missing? scripts/install-deps.sh installs it)"
for tool in groff man mandoc; do
  command -v $tool >/dev/null || fail "$tool missing (scripts/install-deps.sh installs it)"
done

# Long and short options in a help text or a rendered page, one a line.
options_in() { grep -oE '(^|[^[:alnum:]-])--?[[:alpha:]][[:alnum:]-]*' | grep -oE -- '--?[[:alnum:]-]+$' | sort -u; }
# The page as a reader sees it, in lines long enough that no name is
# broken at a hyphen; ASCII hyphens, no overstrike.
render() { groff -man -Tutf8 -rLL=300n -P-cbou "$1" 2>/dev/null | sed 's/\xe2\x80\x90/-/g'; }
# The rendered OPTIONS section only (other sections cite other programs).
options_section() { render "$1" | sed -n '/^OPTIONS$/,/^[A-Z][A-Z ]*$/p' | sed '1d;$d'; }

# check_page PAGE HELP-TEXT: the options of both agree; prints the difference.
check_page() {
  local page=$1 help=$2 missing extra
  missing=$(comm -23 <(options_in <<<"$help") <(render "$page" | options_in))
  extra=$(comm -13 <(options_in <<<"$help") <(options_section "$page" | options_in))
  [ -z "$missing" ] && [ -z "$extra" ] && return 0
  [ -z "$missing" ] || echo "$(basename "$page"): --help has, the page lacks: $(echo $missing)"
  [ -z "$extra" ] || echo "$(basename "$page"): the page describes, --help lacks: $(echo $extra)"
  return 1
}

version=$("$UNBD" --version) || fail "unbd --version failed"
version=${version#unbd }
version=${version%% *}
# The commands: CLI11 lists them under "Subcommands:", two spaces in.
commands=$("$UNBD" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(wc -l <<<"$commands")" -ge 7 ] || fail "unbd --help lists only: $(echo $commands)"
errors=()
pages=("$man_dir/unbd.8")
main_page=$(render "$man_dir/unbd.8")
check_page "$man_dir/unbd.8" "$("$UNBD" --help | sed '/^Subcommands:/,$d')" || errors+=("unbd.8")
for c in $commands; do
  page=$man_dir/unbd-$c.8
  [ -f "$page" ] || { errors+=("no page unbd-$c.8 for command $c"); continue; }
  pages+=("$page")
  grep -qF "unbd-$c(8)" <<<"$main_page" || errors+=("unbd(8) does not refer to unbd-$c(8)")
  check_page "$page" "$("$UNBD" "$c" --help)" || errors+=("unbd-$c.8")
done
for page in "$man_dir"/*.8; do
  [[ " ${pages[*]} " == *" $page "* ]] || errors+=("$(basename "$page") documents no command of unbd --help")
done

for page in "${pages[@]}"; do
  name=$(basename "$page")
  out=$(groff -ww -z -man "$page" 2>&1) && [ -z "$out" ] || errors+=("groff -ww on $name: $out")
  out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) &&
    [ -z "$out" ] || errors+=("man --warnings on $name: $out")
  out=$(mandoc -T lint -W warning "$page" 2>&1) || errors+=("mandoc -T lint on $name: $out")
  grep -q "^\.TH .*\"unbd $version\"" "$page" || errors+=("$name is not for unbd $version: $(grep '^\.TH' "$page")")
  zcmp -s "$page.gz" "$page" || errors+=("$name.gz is not $name")
done
[ ${#errors[@]} = 0 ] || { printf '%s\n' "${errors[@]}" >&2; fail "${#errors[@]} problem(s) with the man pages"; }

# The check itself: a copy of unbd-attach.8 without --read-only, and one
# that describes an option unbd does not have, are both caught.
broken=$TESTDIR/unbd-attach.8
grep -v 'read-only' "$man_dir/unbd-attach.8" >"$broken"
check_page "$broken" "$("$UNBD" attach --help)" >/dev/null && fail "a page without --read-only passed the check"
sed '/^\.SH OPTIONS/a\
.TP\
\\fB--no-such-option\\fP\
made up' "$man_dir/unbd-attach.8" >"$broken"
out=$(check_page "$broken" "$("$UNBD" attach --help)") && fail "a page with a made-up option passed the check"
[[ $out == *"--no-such-option"* ]] || fail "the made-up option was not named: $out"
echo "PASS: ${#pages[@]} pages match unbd $version's commands and options and lint clean"
