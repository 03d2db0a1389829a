#!/usr/bin/env bash
# Installs what the tests need (Debian packages, a Python venv with real AWS clients) when
# it is missing, then runs the whole suite. Safe to run again: installed things are reused.
#
#   tests/run.sh              everything
#   tests/run.sh -- FILTER    only tests whose name contains FILTER (passed to cargo test)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Debian packages: command -> package.
declare -A need=(
  [openssl]=openssl
  [curl]=curl
  [wrk]=wrk
  [tcpdump]=tcpdump
  [systemd-analyze]=systemd
  [systemd-socket-activate]=systemd
  [softhsm2-util]=softhsm2
  [pkcs11-tool]=opensc
  [script]=bsdutils
  [swtpm]=swtpm
  [swtpm_setup]=swtpm-tools
  [tpm2_create]=tpm2-tools
  [faketime]=faketime
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The PKCS#11 tests also load p11-kit's proxy module (a library, not a command), which
# offers SoftHSM's tokens through the module registration softhsm2 installs.
compgen -G '/usr/lib/*/p11-kit-proxy.so' >/dev/null || compgen -G '/usr/lib/p11-kit-proxy.so' >/dev/null ||
  missing+=(p11-kit-modules)
# The TPM tests make keys with tpm2-openssl, an OpenSSL provider (a library, not a command).
compgen -G '/usr/lib/*/ossl-modules/tpm2.so' >/dev/null || missing+=(tpm2-openssl)
# Debian's own python3 creates venvs only with python3-venv (ensurepip) installed.
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

. .ci/install.sh
apt_install run.sh "${missing[@]}"

# Python clients and Node.js, in a venv kept beside the tests and rebuilt when requirements
# change.
venv="$root/tests/.venv"
venv_from run.sh "$venv" tests/requirements.txt python

# The AWS SDK for JavaScript v3, at the versions package-lock.json pins, beside its scripts,
# installed with the venv's Node.js; reinstalled when the lock file is newer than node_modules.
js="$root/tests/sdk/js"
if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
  echo "run.sh: installing the JavaScript SDK in tests/sdk/js" >&2
  (cd "$js" && PATH="$venv/bin:$PATH" npm ci --no-audit --no-fund --loglevel=error)
  touch "$js/node_modules"
fi

# The official helper, for the side-by-side tests (tests/it/conformance/), when it sits
# beside the repository; without it they say they are skipped (and fail under CI=true).
official="$root/../shared/peers/official-1.8.0/aws_signing_helper"
if [ -x "$official" ]; then
  RA_TEST_OFFICIAL=$(realpath "$official")
  export RA_TEST_OFFICIAL
fi

export RA_TEST_PYTHON="$venv/bin/python"
export RA_TEST_VENV_BIN="$venv/bin"
export RA_TEST_JS_DIR="$js"
# Tests that need a tool fail (never skip) when it is missing; this says they may rely on it.
export RA_TEST_FULL=1

filter=()
if [ "${1:-}" = "--" ]; then
  shift
  filter=("$@")
fi
# The library's unit tests, then the one integration crate (last, so its summary closes the run).
cargo test --locked --lib --test it -- "${filter[@]}"
