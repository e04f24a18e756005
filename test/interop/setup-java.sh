#!/usr/bin/env bash
# Prepares the java-spiffe peer for the interop suite (run by setup.sh, or on its own):
#   - .cache/java/java-client.jar : java-client/ (java-spiffe-core + grpc-netty-linux, versions pinned in
#                                   java-client/pom.xml) shaded into one runnable jar
# Idempotent and cache-aware: the jar carries a stamp of the JDK, Maven, pom.xml and sources and is rebuilt
# only when one changes. Maven runs with -q -B and the default ~/.m2 repository.
# Like setup.sh, a missing or too old toolchain is an error that says what to install.
#
# Environment: INTEROP_JAVA_HOME=/path/to/jdk picks the JDK (it must be executable by the test uids, which
# run the jar; the default is the JDK `java` on PATH resolves to).
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$HERE/.cache"
OUT="$CACHE/java"
SRC="$HERE/java-client"
JAR="$OUT/java-client.jar"
JAVA_MIN="17"   # maven.compiler.release in java-client/pom.xml
MVN_MIN="3.6.3" # maven-shade-plugin 3.6.x

say() { echo "interop: $*" >&2; }
die() { echo "interop: $*" >&2; exit 1; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

pick_java() {
  local java
  if [ -n "${INTEROP_JAVA_HOME:-}" ]; then
    java="$INTEROP_JAVA_HOME/bin/java"
  else
    command -v java >/dev/null 2>&1 || die "java not found; install a JDK >= $JAVA_MIN (e.g. apt-get install openjdk-17-jdk-headless) and put it on PATH"
    java="$(readlink -f "$(command -v java)")"
  fi
  [ -x "$java" ] || die "$java is not executable; set INTEROP_JAVA_HOME to a JDK >= $JAVA_MIN"
  local v; v="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [ -n "$v" ] || die "cannot read the version of $java"
  version_ge "$v" "$JAVA_MIN" || die "java $v ($java) is too old; install a JDK >= $JAVA_MIN or set INTEROP_JAVA_HOME"
  # The test uids run the jar with this java, so it must be reachable without root.
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid=1001 --regid=1001 --clear-groups -- "$java" -XX:-UsePerfData -version >/dev/null 2>&1 \
      || die "$java is not executable by uid 1001 (check the permissions of its JDK directory), or set INTEROP_JAVA_HOME"
  fi
  echo "$java"
}

check_mvn() {
  command -v mvn >/dev/null 2>&1 || die "mvn not found; install Maven >= $MVN_MIN (e.g. apt-get install maven) and put it on PATH"
  # mvn -v colours its first line; strip the escapes before reading the version.
  local v; v="$(mvn -v 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/^Apache Maven \([0-9.]*\).*/\1/p' | head -n1)"
  [ -n "$v" ] || die "cannot read the Maven version from 'mvn -v'"
  version_ge "$v" "$MVN_MIN" || die "maven $v is too old; install Maven >= $MVN_MIN"
}

build_jar() {
  local java="$1" stamp="$OUT/java-client.stamp" want java_home
  java_home="$(dirname "$(dirname "$java")")"
  # Sorted so the stamp does not depend on find's order; names are hashed too, so a rename rebuilds.
  want="$( {
    "$java" -version 2>&1
    mvn -v 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | head -n1
    cd "$SRC" && find pom.xml src -type f | LC_ALL=C sort | while read -r f; do echo "$f"; sha256sum < "$f"; done
  } | sha256sum | cut -d' ' -f1)"
  if [ -f "$JAR" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "java-client.jar up to date"
    return
  fi
  say "building java-client.jar (java-spiffe from Maven Central via ~/.m2)"
  mkdir -p "$OUT"
  # The build dir lives in the cache, so the source tree stays clean and a failed build leaves no half jar.
  # -q leaves only errors; on success the output is nothing but the launcher's terminal resets, so drop it.
  local log
  if ! log="$(cd "$SRC" && JAVA_HOME="$java_home" mvn -q -B -Dstyle.color=never \
      -Dinterop.buildDir="$OUT/target" -Dmaven.test.skip=true package 2>&1)"; then
    printf '%s\n' "$log" >&2
    die "maven build of java-client failed; see the output above"
  fi
  cp -f "$OUT/target/java-client.jar" "$JAR.tmp"
  mv -f "$JAR.tmp" "$JAR"
  chmod 0644 "$JAR"
  echo "$want" > "$stamp"
  rm -rf "$OUT/target"
}

main() {
  local t0=$SECONDS java rc=0
  java="$(pick_java)"
  check_mvn
  mkdir -p "$OUT"
  chmod 0755 "$CACHE" "$OUT"
  build_jar "$java"
  # java-spiffe.test.ts runs the jar with the same JDK it was checked against here.
  echo "$java" > "$OUT/java-path.tmp" && mv -f "$OUT/java-path.tmp" "$OUT/java-path"
  # Smoke: the jar starts and reports the missing endpoint with its usage exit code.
  env -u SPIFFE_ENDPOINT_SOCKET "$java" -XX:-UsePerfData -jar "$JAR" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || die "java-client.jar did not start (exit $rc, expected 2 for a missing SPIFFE_ENDPOINT_SOCKET)"
  say "java ready in $((SECONDS - t0))s: $JAR ($java)"
}

main "$@"
