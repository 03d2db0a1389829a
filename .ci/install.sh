# Sourced by tests/run.sh and packaging/tools.sh: the two ways they install what is missing,
# so that a second run finds it and does nothing.

# apt_install LABEL PACKAGE...: installs the Debian packages given (none: does nothing), with
# sudo unless running as root.
apt_install() {
  local label=$1
  shift
  (($#)) || return 0
  echo "$label: installing $*" >&2
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# venv_from LABEL VENV REQUIREMENTS PROGRAM: makes the Python venv VENV from the pinned
# REQUIREMENTS file unless VENV/bin/PROGRAM is there and the file has not changed since (its
# checksum is kept in the venv).
venv_from() {
  local label=$1 venv=$2 requirements=$3 program=$4
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/$program" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "$label: preparing the Python venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
  fi
}
