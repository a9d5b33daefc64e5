#!/usr/bin/env bash
# build.sh - target/release/berth, one statically linked (static-pie) binary.
#
# berth is linked against musl when it can be: glibc's start-up probes the CPU's caches
# with dozens of CPUID instructions at every exec (init_cacheinfo), and in a virtual
# machine each of them traps to the hypervisor. That was 0.36 ms of berth's 0.8 ms
# start-up floor here, paid at every verb and twice by create, run and exec, which
# re-execute themselves (issue 16). musl's start-up does none of it.
#
# The musl build needs: the Rust target $ARCH-unknown-linux-musl (rustup), musl-gcc
# (Debian's musl-tools) for the C that the dbus crate vendors, and libseccomp built for
# musl: Debian's own source of the libseccomp that libseccomp-dev ships (the upstream
# tarball and Debian's patches, checked against pinned SHA-256 sums), configured with
# musl-gcc into build/libseccomp-musl. When any of that cannot be had (no network, no
# rustup, another architecture, or BERTH_LIBC=glibc), berth is linked statically against
# glibc instead, as before, and this script says why. (The glibc build is the one every
# test ran on up to stop 19; from stop 20 on, make test runs the musl build.)
#
# Environment: CARGO (cargo), BERTH_LIBC (auto | musl | glibc; musl fails rather than
# falling back).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CARGO=${CARGO:-cargo}
WANT=${BERTH_LIBC:-auto}
ARCH=$(uname -m)
TARGET=$ARCH-unknown-linux-musl
# cargo's output directory (CARGO_TARGET_DIR, relative to where this was called from)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
export CARGO_TARGET_DIR=$TARGET_DIR
OUT=$TARGET_DIR/release/berth

LSC_VERSION=2.5.4
LSC_DEBIAN=2.5.4-1+deb12u1
LSC_POOL=https://deb.debian.org/debian/pool/main/libs/libseccomp
LSC_ORIG_SHA256=d82902400405cf0068574ef3dc1fe5f5926207543ba1ae6f8e7a1576351dcbdb
LSC_DEBIAN_SHA256=665fc6ad1b9887207b0af1a293a2d7975e2df503a2618d1808b970081f9672f6
LSC_PREFIX=$REPO/build/libseccomp-musl-$LSC_DEBIAN

note() { echo "build: $*" >&2; }

build_glibc() {
  # crt-static is passed to the binary alone (cargo rustc): in RUSTFLAGS it would reach
  # the proc-macro crates, which cannot be static.
  (cd "$REPO" && $CARGO rustc --release -p berth --bin berth -- -C target-feature=+crt-static)
}

# libseccomp for musl, once: Debian's source (upstream tarball + Debian's patches, which
# add the syscalls up to Linux 6.7, as in the libseccomp that the glibc build links).
libseccomp_musl() {
  [ -f "$LSC_PREFIX/lib/libseccomp.a" ] && return 0
  local src=$REPO/build/libseccomp-src f sum
  rm -rf "$src" && mkdir -p "$src"
  for f in "libseccomp_$LSC_VERSION.orig.tar.gz:$LSC_ORIG_SHA256" \
           "libseccomp_$LSC_DEBIAN.debian.tar.xz:$LSC_DEBIAN_SHA256"; do
    sum=${f#*:} f=${f%%:*}
    curl -sSfL --retry 2 --max-time 120 -o "$src/$f" "$LSC_POOL/${f//+/%2B}" || { note "cannot download $f"; return 1; }
    echo "$sum  $src/$f" | sha256sum -c --quiet - >&2 || { note "$f: SHA-256 mismatch"; return 1; }
  done
  tar xzf "$src/libseccomp_$LSC_VERSION.orig.tar.gz" -C "$src"
  tar xJf "$src/libseccomp_$LSC_DEBIAN.debian.tar.xz" -C "$src/libseccomp-$LSC_VERSION"
  # musl-gcc sees only musl's headers; libseccomp needs the kernel's (linux/, asm/).
  mkdir -p "$src/kernel-headers"
  ln -sfn /usr/include/linux "$src/kernel-headers/linux"
  ln -sfn "/usr/include/$ARCH-linux-gnu/asm" "$src/kernel-headers/asm"
  ln -sfn /usr/include/asm-generic "$src/kernel-headers/asm-generic"
  (
    cd "$src/libseccomp-$LSC_VERSION"
    while read -r p; do
      case $p in ''|'#'*) continue ;; esac
      patch -s -p1 < "debian/patches/$p"
    done < debian/patches/series
    CC=musl-gcc CFLAGS="-O2 -fPIC -isystem $src/kernel-headers" \
      ./configure --prefix="$LSC_PREFIX" --enable-static --disable-shared >"$src/configure.log" 2>&1
    make -s -C src >"$src/make.log" 2>&1
    make -s -C src install >>"$src/make.log" 2>&1
  ) || { note "libseccomp for musl did not build (logs in $src)"; return 1; }
  rm -rf "$src"
}

# Why the musl build cannot be made here; empty when it can.
musl_blocker() {
  [ "$ARCH" = x86_64 ] || { echo "musl is set up for x86_64 only, not $ARCH"; return; }
  if ! command -v musl-gcc >/dev/null || ! command -v gperf >/dev/null; then
    # Only these two: a build must not pull in the engines and tools that deps.sh lists.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      note "installing musl-tools and gperf"
      { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools gperf \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                 --no-install-recommends musl-tools gperf; }; } >/dev/null 2>&1 || true
    fi
    command -v musl-gcc >/dev/null || { echo "no musl-gcc (apt-get install musl-tools)"; return; }
    command -v gperf >/dev/null || { echo "no gperf (apt-get install gperf)"; return; }
  fi
  local libdir
  libdir=$(rustc --print target-libdir --target "$TARGET" 2>/dev/null) || libdir=
  if [ -z "$libdir" ] || [ ! -d "$libdir" ]; then
    command -v rustup >/dev/null || { echo "no Rust target $TARGET and no rustup"; return; }
    rustup target add "$TARGET" >/dev/null 2>&1 || { echo "rustup could not add $TARGET"; return; }
  fi
  libseccomp_musl || { echo "no libseccomp for musl"; return; }
}

build_musl() {
  local cc_var=CC_${TARGET//-/_}
  (
    cd "$REPO"
    export "$cc_var=musl-gcc" LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$LSC_PREFIX/lib"
    $CARGO rustc --release --target "$TARGET" -p berth --bin berth
  )
  # Replaced, not rewritten: a berth that runs from the old file keeps it.
  mkdir -p "$(dirname "$OUT")"
  cp "$TARGET_DIR/$TARGET/release/berth" "$OUT.new"
  mv -f "$OUT.new" "$OUT"
  note "$OUT: static-pie, musl"
}

case $WANT in
  glibc) build_glibc; note "$OUT: static-pie, glibc" ;;
  musl|auto)
    why=$(musl_blocker)
    if [ -z "$why" ]; then
      build_musl
    elif [ "$WANT" = musl ]; then
      note "cannot build against musl: $why"; exit 1
    else
      note "$why: linking berth statically against glibc instead"
      build_glibc
      note "$OUT: static-pie, glibc"
    fi ;;
  *) note "BERTH_LIBC must be auto, musl or glibc, not $WANT"; exit 1 ;;
esac
