#!/bin/bash
# `unbd --version` is project()'s version, plus `git describe` when built
# from a git checkout: cmake/version.cmake gives the plain version for a
# tree without .git (an unpacked tarball), also when that tree sits inside
# some other git repository, and the binary says what its build generated.
. "$(dirname "$0")/../functions.sh"
project_version=$(sed -n 's/^project(unbd VERSION \([0-9.]*\) .*/\1/p' "$UNBD_SOURCE_DIR/CMakeLists.txt")
[ -n "$project_version" ] || fail "no project() version in CMakeLists.txt"
generate() { # SOURCE-DIR OUT: the header's UNBD_VERSION_FULL
  cmake -DSOURCE_DIR="$1" -DOUT="$2" -DVERSION="$project_version" -P "$UNBD_SOURCE_DIR/cmake/version.cmake" ||
    fail "cmake/version.cmake failed for $1"
  sed -n 's/^#define UNBD_VERSION_FULL "\(.*\)"$/\1/p' "$2"
}

# A tarball: the tree without .git.
mkdir -p "$TESTDIR/tarball/cmake"
cp "$UNBD_SOURCE_DIR/CMakeLists.txt" "$TESTDIR/tarball/"
got=$(generate "$TESTDIR/tarball" "$TESTDIR/v1.h")
[ "$got" = "$project_version" ] || fail "without git: '$got', expected '$project_version'"
# The same tree unpacked inside another repository: not that repository's describe.
git -C "$TESTDIR" init -q outer
git -C "$TESTDIR/outer" -c user.name=t -c user.email=t@t commit -q --allow-empty -m outer
mv "$TESTDIR/tarball" "$TESTDIR/outer/unbd-$project_version"
got=$(generate "$TESTDIR/outer/unbd-$project_version" "$TESTDIR/v2.h")
[ "$got" = "$project_version" ] || fail "inside another repository: '$got', expected '$project_version'"

# This checkout: with git describe, if it is one.
got=$(generate "$UNBD_SOURCE_DIR" "$TESTDIR/v3.h")
if describe=$(git -C "$UNBD_SOURCE_DIR" describe --tags --always --dirty 2>/dev/null) &&
   [ "$(git -C "$UNBD_SOURCE_DIR" rev-parse --show-toplevel)" -ef "$UNBD_SOURCE_DIR" ]; then
  [ "$got" = "$project_version (git $describe)" ] || fail "in git: '$got', expected '$project_version (git $describe)'"
else
  [ "$got" = "$project_version" ] || fail "not in git: '$got'"
fi

# The binary says its build's header.
built=$(sed -n 's/^#define UNBD_VERSION_FULL "\(.*\)"$/\1/p' "$UNBD_BUILD_DIR/generated/unbd_version.h")
[ "$("$UNBD" --version)" = "unbd $built" ] || fail "unbd --version says '$("$UNBD" --version)', its build generated '$built'"
[[ $built == "$project_version"* ]] || fail "the build's version '$built' is not project()'s $project_version"
echo "PASS: unbd --version: $("$UNBD" --version)"
