# Shared set-up for scripts/serve and scripts/test. Sourced, not run.
# Installs what a fresh Debian machine with a Rust toolchain lacks, idempotently.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Outside the clone, so later runs and fresh clones on the same machine reuse the build
# (the RocksDB C++ build alone takes 10-17 minutes on 2 cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
TESSERA_BIN="$CARGO_TARGET_DIR/release/tessera"
export TESSERA_BIN

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_build_deps() {
  # RocksDB comes from Debian (librocksdb-dev, linked through .cargo/config.toml) instead of a
  # 30-minute C++ build; librocksdb-sys generates its bindings with bindgen, which needs libclang.
  local missing=()
  local pkg
  for pkg in libclang-dev librocksdb-dev; do
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
  if ! python3 -c 'import boto3, pytest, pytest_timeout, minio, obstore, S3' >/dev/null 2>&1 \
    || ! command -v aws >/dev/null 2>&1 || ! command -v s3cmd >/dev/null 2>&1; then
    echo "==> installing the test clients (pytest, boto3, aws-cli, minio, s3cmd, obstore)"
    python3 -m pip install -q -r "$REPO_ROOT/compat-tests/requirements.txt"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    hash -r
  fi
  # rclone as a client; promtool (Debian package prometheus) checks the /metrics output.
  local missing=()
  command -v rclone >/dev/null 2>&1 || missing+=(rclone)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
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
  echo "==> cargo build --release (target dir: $CARGO_TARGET_DIR)"
  (cd "$REPO_ROOT" && cargo build --release --locked "$@")
}
