# Shared set-up for scripts/serve and scripts/test. Sourced, not run.
# Installs what a fresh Debian machine with a Rust toolchain lacks, idempotently.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Outside the clone, so later runs and fresh clones on the same machine reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
# Builds name the target explicitly: then the static-linking flags below reach tessera's
# binaries and test programs, but not build scripts and proc macros (which cannot be static).
TESSERA_TARGET="${TESSERA_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
TESSERA_BIN="$CARGO_TARGET_DIR/$TESSERA_TARGET/release/tessera"
export TESSERA_TARGET TESSERA_BIN

# Debian's multiarch directory of a Rust target (x86_64-unknown-linux-gnu -> x86_64-linux-gnu).
multiarch_of() {
  local triple="$1"
  echo "${triple%%-*}-linux-gnu"
}

# Everything is linked statically: glibc, libstdc++, Debian's librocksdb.a and the compression
# libraries RocksDB calls (their -dev packages come with librocksdb-dev). The binary then runs
# on any Linux of the architecture, Alpine included. RocksDB's own link line names none of the
# compression libraries, so their archives follow at the end of the link; scripts/static-link
# keeps librocksdb-sys from asking for a shared libstdc++.
static_link_env() {
  local triple="$1" libdir var lib flags
  libdir="${TESSERA_LIBDIR:-/usr/lib/$(multiarch_of "$triple")}"
  export ROCKSDB_LIB_DIR="$libdir" ROCKSDB_INCLUDE_DIR="${ROCKSDB_INCLUDE_DIR:-/usr/include}" ROCKSDB_STATIC=1
  # getrandom finds glibc's getrandom() with dlsym, which a static binary does not have, and
  # would fall back to /dev/urandom: call it directly instead (no device file needed).
  flags="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""
  for lib in snappy lz4 zstd bz2 z; do
    flags+=" -C link-arg=$libdir/lib$lib.a"
  done
  var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')"
  export "${var}_RUSTFLAGS=$flags" "${var}_LINKER=$REPO_ROOT/scripts/static-link"
}
static_link_env "$TESSERA_TARGET"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_build_deps() {
  # RocksDB comes from Debian (librocksdb-dev, linked through .cargo/config.toml) instead of a
  # 30-minute C++ build; librocksdb-sys generates its bindings with bindgen, which needs libclang;
  # etcd-client compiles etcd's .proto files with protoc (protobuf-compiler).
  local missing=()
  local pkg
  for pkg in libclang-dev librocksdb-dev protobuf-compiler; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]} (needed to build tessera)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_test_deps() {
  # `S3` is s3cmd's Python package; the tests run the s3cmd script next to python3.
  if ! python3 -c 'import boto3, pytest, pytest_timeout, minio, obstore, S3, kubernetes_validate, selenium' >/dev/null 2>&1 \
    || ! command -v aws >/dev/null 2>&1 || ! command -v s3cmd >/dev/null 2>&1; then
    echo "==> installing the test clients (pytest, boto3, aws-cli, minio, s3cmd, obstore, kubernetes-validate, selenium)"
    python3 -m pip install -q -r "$REPO_ROOT/compat-tests/requirements.txt"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    hash -r
  fi
  # rclone as a client; promtool (Debian package prometheus) checks the /metrics output; etcd
  # (etcd-server) for the metastore's suite on etcd.
  local missing=()
  command -v rclone >/dev/null 2>&1 || missing+=(rclone)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  # FUSE mounts of a bucket (rclone mount, s3fs); systemd-analyze checks the units in deploy/.
  command -v s3fs >/dev/null 2>&1 || missing+=(s3fs)
  command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  # deploy/compose.yaml's cluster profile runs in the tests with Debian's haproxy.
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  # The TLS tests make their CA and certificates with openssl and speak HTTP/2 with curl.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # The web console's tests drive headless Chromium through its WebDriver.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    local log
    log="$(mktemp)"
    if ! { as_root apt-get update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
    rm -f "$log"
    hash -r
  fi
}

build_release() {
  echo "==> cargo build --release --target $TESSERA_TARGET (static; target dir: $CARGO_TARGET_DIR)"
  (cd "$REPO_ROOT" && cargo build --release --locked --target "$TESSERA_TARGET" "$@")
}

# For scripts/build-static TARGET on another architecture: Debian's cross compiler, the Rust
# target, and the target's RocksDB and compression libraries, unpacked under the cache
# (librocksdb-dev cannot be installed for two architectures at once).
ensure_cross_deps() {
  local triple="$1" arch deb_arch root var
  arch="${triple%%-*}"
  case "$arch" in
    aarch64) deb_arch=arm64 ;;
    x86_64) deb_arch=amd64 ;;
    *) echo "scripts/build-static: no Debian cross toolchain known for $triple" >&2; exit 2 ;;
  esac
  rustup target add "$triple" >&2
  ensure_build_deps
  if ! command -v "$arch-linux-gnu-g++" >/dev/null 2>&1; then
    echo "==> installing the $arch cross compiler" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "gcc-$arch-linux-gnu" "g++-$arch-linux-gnu" >/dev/null
  fi
  root="$HOME/.cache/tessera-cross/$deb_arch"
  if [ ! -f "$root/usr/lib/$arch-linux-gnu/librocksdb.a" ]; then
    echo "==> fetching RocksDB and compression libraries for $deb_arch" >&2
    if ! dpkg --print-foreign-architectures | grep -qx "$deb_arch"; then
      as_root dpkg --add-architecture "$deb_arch"
    fi
    as_root apt-get update -qq
    mkdir -p "$root/debs"
    (cd "$root/debs" && apt-get download -qq "librocksdb-dev:$deb_arch" "libsnappy-dev:$deb_arch" \
      "liblz4-dev:$deb_arch" "libzstd-dev:$deb_arch" "libbz2-dev:$deb_arch" "zlib1g-dev:$deb_arch")
    for deb in "$root"/debs/*.deb; do dpkg -x "$deb" "$root"; done
  fi
  export TESSERA_LIBDIR="$root/usr/lib/$arch-linux-gnu"
  export TESSERA_LINK_CC="$arch-linux-gnu-gcc"
  export "CC_${triple//-/_}=$arch-linux-gnu-gcc" "CXX_${triple//-/_}=$arch-linux-gnu-g++"
  export "BINDGEN_EXTRA_CLANG_ARGS_${triple//-/_}=--sysroot=/usr/$arch-linux-gnu"
}
