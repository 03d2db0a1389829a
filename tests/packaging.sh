#!/usr/bin/env bash
# Builds the packages (packaging/build.sh, which installs its tools) and checks them: the
# files and modes of the .deb and the .rpm, their metadata and dependencies, the units
# against the packaged binary (systemd-analyze verify), the man pages (man -l), the bash
# completion, the highest glibc symbol version, `credential-process` of the packaged binary
# against the emulator, and the README's install commands. Prints the package sizes.
#
#   tests/packaging.sh
#
# The README's `apt install` line is run for real (and the package purged after) under
# CI=true or with RA_PACKAGING_INSTALL=1, as root: it changes the machine it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

packaging/build.sh
export PATH="$root/packaging/.venv/bin:$PATH"

work=$(mktemp -d)
emu_pid=""
installed=""
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  [ -n "$installed" ] && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rolesanywhere-helper >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
ok() { echo "ok   $*"; }
fail() {
  echo "FAIL $*" >&2
  failures=$((failures + 1))
}

version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"]=="rolesanywhere-helper"][0]["version"])')
deb="rolesanywhere-helper_${version}-1_amd64.deb"
rpm="rolesanywhere-helper-${version}-1.x86_64.rpm"
tarball="rolesanywhere-helper-${version}-x86_64-linux-gnu.tar.gz"
for f in "$deb" "$rpm" "$tarball" SHA256SUMS; do
  [ -f "dist/$f" ] || fail "dist/$f was not made"
done
((failures == 0)) || exit 1
[ "$(awk '{ print $2 }' dist/SHA256SUMS | sort)" = "$(printf '%s\n' "$deb" "$rpm" "$tarball" | sort)" ] &&
  (cd dist && sha256sum --quiet -c SHA256SUMS) && ok "SHA256SUMS holds the three files' checksums" || fail "SHA256SUMS"

# Every file of both packages: mode, owner:group, path. The zsh completion and the licence
# sit where each family looks for them.
common=(
  "-rwxr-xr-x root:root /usr/bin/rolesanywhere-helper"
  "-rw-r--r-- root:root /usr/lib/systemd/system/rolesanywhere-helper.service"
  "-rw-r--r-- root:root /usr/lib/systemd/system/rolesanywhere-helper@.service"
  "-rw-r--r-- root:root /usr/lib/systemd/system/rolesanywhere-helper.socket"
  "-rw-r--r-- root:root /usr/lib/systemd/system/rolesanywhere-helper.service.d/config-group.conf"
  "-rw-r--r-- root:root /usr/lib/systemd/system/rolesanywhere-helper@.service.d/config-group.conf"
  "-rw-r----- root:rolesanywhere-helper /etc/rolesanywhere-helper/config.toml"
  "-rw-r--r-- root:root /usr/share/bash-completion/completions/rolesanywhere-helper"
  "-rw-r--r-- root:root /usr/share/fish/vendor_completions.d/rolesanywhere-helper.fish"
  "-rw-r--r-- root:root /usr/share/doc/rolesanywhere-helper/README.md"
  "-rw-r--r-- root:root /usr/share/doc/rolesanywhere-helper/systemd/README.md"
)
for page in "" -completion -credential-process -demo -emulate -pki -pki-init \
  -read-certificate-data -serve -sign-string -update -version; do
  common+=("-rw-r--r-- root:root /usr/share/man/man1/rolesanywhere-helper$page.1.gz")
done
want_deb=("${common[@]}"
  "-rw-r--r-- root:root /usr/share/zsh/vendor-completions/_rolesanywhere-helper"
  "-rw-r--r-- root:root /usr/share/doc/rolesanywhere-helper/copyright")
want_rpm=("${common[@]}"
  "-rw-r--r-- root:root /usr/share/zsh/site-functions/_rolesanywhere-helper"
  "-rw-r--r-- root:root /usr/share/licenses/rolesanywhere-helper/LICENSE")

# Compares a listing (one "mode owner:group path" line per file) with the wanted lines.
same_files() {
  local what=$1 listing=$2
  shift 2
  local diff
  if diff=$(diff <(printf '%s\n' "$@" | sort) <(sort <<<"$listing")); then
    ok "$what: every file with its mode and owner ($# files)"
  else
    fail "$what: files differ (< wanted, > packaged):"$'\n'"$diff"
  fi
}

# --- the .deb
info=$(dpkg-deb --info "dist/$deb")
for line in "Package: rolesanywhere-helper" "Version: $version-1" "Architecture: amd64" \
  "Depends: libc6 (>= 2.17)" "Description: $(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"]=="rolesanywhere-helper"][0]["description"])')"; do
  grep -qxF " $line" <<<"$info" || fail "deb: dpkg-deb --info has no '$line':"$'\n'"$info"
done
[ "$(grep -c '^ Depends:\|^ Pre-Depends:\|^ Recommends:' <<<"$info")" = 1 ] || fail "deb: more than the one dependency on libc6"
[ "$(dpkg-deb --ctrl-tarfile "dist/$deb" | tar -xO ./conffiles)" = /etc/rolesanywhere-helper/config.toml ] &&
  ok "deb: metadata, Depends only libc6 (>= 2.17), config.toml a conffile" ||
  fail "deb: conffiles is not exactly /etc/rolesanywhere-helper/config.toml"
listing=$(dpkg-deb --contents "dist/$deb" | awk '$1 !~ /^d/ { split($2, o, "/"); sub(/^\./, "", $6); print $1, o[1] ":" o[2], $6 }')
same_files deb "$listing" "${want_deb[@]}"

# --- the .rpm
rpm -qip "dist/$rpm" >"$work/rpm-info"
for field in "Name        : rolesanywhere-helper" "Version     : $version" "License     : Apache-2.0"; do
  grep -qF "$field" "$work/rpm-info" || fail "rpm: rpm -qip has no '$field'"
done
requires=$(rpm -qpR "dist/$rpm" | grep -v '^rpmlib(' | grep -vx '/bin/sh' || true)
[ "$requires" = "glibc >= 2.17" ] && ok "rpm: metadata, requires only glibc >= 2.17 (and /bin/sh for its scripts)" ||
  fail "rpm: requires more than glibc: $requires"
[ "$(rpm -qpc "dist/$rpm")" = /etc/rolesanywhere-helper/config.toml ] || fail "rpm: config files: $(rpm -qpc "dist/$rpm")"
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "dist/$rpm" | grep ' /etc/rolesanywhere-helper/config.toml$')
[[ "$flags" == *n*" /etc/"* && "$flags" == c* ]] && ok "rpm: config.toml is %config(noreplace)" || fail "rpm: config.toml flags: $flags"
rpm -qlp "dist/$rpm" >"$work/rpm-list"
listing=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "dist/$rpm" | grep -v '^d')
grep -qxF /usr/bin/rolesanywhere-helper "$work/rpm-list" || fail "rpm: rpm -qlp does not list the binary"
same_files rpm "$listing" "${want_rpm[@]}"

# --- the .deb unpacked into a throwaway root, beside what any system has and the units
# name: systemd's own units (the targets) and kill.
tree="$work/root"
dpkg-deb -x "dist/$deb" "$tree"
host_units=/usr/lib/systemd/system
[ -f "$host_units/sysinit.target" ] || host_units=/lib/systemd/system
cp -an "$host_units/." "$tree/usr/lib/systemd/system/"
ln -s usr/bin "$tree/bin"
cp /bin/kill "$tree/usr/bin/kill"
bin="$tree/usr/bin/rolesanywhere-helper"
units=("$tree"/usr/lib/systemd/system/rolesanywhere-helper.service
  "$tree"/usr/lib/systemd/system/rolesanywhere-helper.socket
  "$tree"/usr/lib/systemd/system/rolesanywhere-helper@.service)
verify=$(cd "$tree" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$tree" \
  usr/lib/systemd/system/rolesanywhere-helper.service usr/lib/systemd/system/rolesanywhere-helper.socket \
  usr/lib/systemd/system/rolesanywhere-helper@example.service 2>&1) && [ -z "$verify" ] &&
  ok "systemd-analyze verify of the installed units (with their drop-ins) is silent" ||
  fail "systemd-analyze verify:"$'\n'"$verify"
grep -qx 'ExecStart=/usr/bin/rolesanywhere-helper serve --config /etc/rolesanywhere-helper/config.toml' "${units[0]}" ||
  fail "the packaged service does not start /usr/bin/rolesanywhere-helper"

pages=0
for page in "$tree"/usr/share/man/man1/*.1.gz; do
  out=$(MANWIDTH=80 man -l "$page" 2>"$work/man-err") || fail "man -l $page exits non-zero"
  if [ -s "$work/man-err" ] || ! grep -q '^NAME' <<<"$out"; then
    fail "man -l ${page##*/}: $(cat "$work/man-err")"
  fi
  pages=$((pages + 1))
done
ok "man -l renders all $pages man pages without a warning"

# bash: load the script as bash-completion would, then ask it to complete `cre`.
completed=$(bash --norc --noprofile -c '
  source "$1"
  fn=$(complete -p rolesanywhere-helper | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
  COMP_WORDS=(rolesanywhere-helper cre)
  COMP_CWORD=1
  COMP_LINE="rolesanywhere-helper cre"
  COMP_POINT=${#COMP_LINE}
  "$fn" rolesanywhere-helper cre rolesanywhere-helper
  printf "%s\n" "${COMPREPLY[@]}"' bash "$tree/usr/share/bash-completion/completions/rolesanywhere-helper")
[ "$completed" = credential-process ] && ok "bash completes 'rolesanywhere-helper cre' to credential-process" ||
  fail "bash completion of 'cre': ${completed:-nothing}"

# glibc: no symbol newer than 2.17, and the dynamic loader (so dlopen) is there.
highest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
if [ -n "$highest" ] && [ "$(printf '%s\n' "$highest" GLIBC_2.17 | sort -V | tail -1)" = GLIBC_2.17 ]; then
  ok "highest glibc symbol version: $highest"
else
  fail "highest glibc symbol version: ${highest:-none} (want at most GLIBC_2.17)"
fi
# dlopen works: the packaged binary loads SoftHSM2's module and looks on its (empty) token.
mkdir "$work/tokens"
printf 'directories.tokendir = %s\n' "$work/tokens" >"$work/softhsm2.conf"
module=/usr/lib/softhsm/libsofthsm2.so
if SOFTHSM2_CONF="$work/softhsm2.conf" softhsm2-util --init-token --free --label pkg --so-pin 1234 --pin 1234 >/dev/null &&
  SOFTHSM2_CONF="$work/softhsm2.conf" "$bin" read-certificate-data --certificate pkcs11:token=pkg \
    --pkcs11-lib "$module" >"$work/p11.out" 2>&1; then
  ok "the packaged binary loads a PKCS#11 module with dlopen ($module: $(head -1 "$work/p11.out"))"
else
  fail "PKCS#11 module $module: $(cat "$work/p11.out" 2>/dev/null)"
fi

# The packaged binary against the emulator.
"$bin" --version | grep -qx "rolesanywhere-helper $version (commit $(git rev-parse HEAD))" &&
  ok "--version names the commit" || fail "--version: $("$bin" --version)"
# What `version` prints for this release build: the version and the commit as semver build
# metadata.
full_version="$version+$(git rev-parse --short=12 HEAD)"
[ "$("$bin" version)" = "$full_version" ] &&
  ok "version prints the version and the commit" || fail "version: $("$bin" version)"
"$bin" pki init "$work/pki" >/dev/null
"$bin" emulate --trust-anchor "$work/pki/root-ca.pem" --tls-cert "$work/pki/tls.pem" \
  --tls-key "$work/pki/tls.key" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
creds=""
if [ -n "$url" ]; then
  creds=$(env -i AWS_CONFIG_FILE=/dev/null AWS_CA_BUNDLE="$work/pki/root-ca.pem" "$bin" credential-process \
    --certificate "$work/pki/leaf.pem" --private-key "$work/pki/leaf.key" --endpoint "$url" \
    --trust-anchor-arn arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/pkg \
    --profile-arn arn:aws:rolesanywhere:us-east-1:111122223333:profile/pkg \
    --role-arn arn:aws:iam::111122223333:role/pkg 2>"$work/cp.err") || true
fi
if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["Version"]==1 and d["AccessKeyId"] and d["SessionToken"]' "$creds" 2>/dev/null; then
  ok "the packaged binary gets credentials from the emulator (credential-process)"
else
  fail "credential-process against the emulator: ${creds:-no output}: $(cat "$work/cp.err" "$work/emu.err" 2>/dev/null)"
fi

# The README's install commands: the block after "<!-- install commands".
mapfile -t commands < <(awk '/<!-- install commands/ { on = 1; next } on && /^```sh/ { inblock = 1; next }
  inblock && /^```/ { exit } inblock { sub(/[ \t]+#.*/, ""); if ($0 != "") print }' README.md)
[ "${#commands[@]}" = 3 ] || fail "README: ${#commands[@]} install commands, want 3: ${commands[*]}"
for command in "${commands[@]}"; do
  case "$command" in
    "sudo apt install ./$deb")
      if [ "${CI:-}" = true ] || [ "${RA_PACKAGING_INSTALL:-}" = 1 ]; then
        if [ "$(id -u)" -ne 0 ]; then
          fail "README: '$command' is run for real only as root"
          continue
        fi
        # As root, without the sudo; what an earlier, interrupted run may have left goes first.
        if dpkg -s rolesanywhere-helper >/dev/null 2>&1; then
          DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rolesanywhere-helper >/dev/null
        fi
        if (cd dist && DEBIAN_FRONTEND=noninteractive ${command#sudo } -y -qq >/dev/null 2>"$work/apt.err"); then
          installed=1
          # Installed, and nothing enabled: no link to a unit of the package anywhere in /etc.
          [ "$(stat -c '%a %U:%G' /etc/rolesanywhere-helper/config.toml)" = "640 root:rolesanywhere-helper" ] &&
            [ "$(/usr/bin/rolesanywhere-helper version)" = "$full_version" ] &&
            [ -f /usr/lib/systemd/system/rolesanywhere-helper.service ] &&
            [ -z "$(find /etc/systemd -name 'rolesanywhere-helper*')" ] &&
            ok "README: '$command' installs it (config 0640 root:rolesanywhere-helper, no unit enabled)" ||
            fail "README: '$command' installed something else"
          # A changed config survives installing the package again.
          echo "# changed here" >>/etc/rolesanywhere-helper/config.toml
          (cd dist && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "./$deb" >/dev/null 2>&1)
          grep -qx '# changed here' /etc/rolesanywhere-helper/config.toml &&
            ok "README: the changed config is kept when the package is installed again" ||
            fail "the changed config was replaced"
        else
          fail "README: '$command': $(cat "$work/apt.err")"
        fi
      else
        ok "README: '$command' names the .deb (run only under CI=true or RA_PACKAGING_INSTALL=1)"
      fi
      ;;
    "sudo dnf install ./$rpm")
      # No dnf here: the .rpm goes into a throwaway rpm root instead.
      rroot="$work/rpmroot"
      mkdir -p "$rroot"
      if rpm --root "$rroot" --initdb && rpm --root "$rroot" -i --nodeps --noscripts "dist/$rpm" 2>"$work/rpm.err" &&
        [ "$(stat -c %a "$rroot/etc/rolesanywhere-helper/config.toml")" = 640 ] &&
        [ "$("$rroot/usr/bin/rolesanywhere-helper" version)" = "$full_version" ]; then
        ok "README: '$command' names the .rpm, which installs into a throwaway rpm root"
      else
        fail "README: '$command': the .rpm does not install into a throwaway root: $(cat "$work/rpm.err")"
      fi
      ;;
    "tar -xzf $tarball")
      mkdir -p "$work/tar" && cp "dist/$tarball" "$work/tar/"
      t="$work/tar/${tarball%.tar.gz}"
      if (cd "$work/tar" && $command) && [ "$("$t/rolesanywhere-helper" version)" = "$full_version" ] &&
        [ -f "$t/systemd/rolesanywhere-helper.service" ] && [ -f "$t/systemd/config.toml" ] &&
        [ -f "$t/completions/rolesanywhere-helper.bash" ] && [ -f "$t/completions/_rolesanywhere-helper" ] &&
        [ -f "$t/completions/rolesanywhere-helper.fish" ] && [ -f "$t/LICENSE" ] &&
        [ "$(ls "$t/man/man1" | wc -l)" = "$pages" ]; then
        ok "README: '$command' unpacks the binary, units, config, man pages and completions"
      else
        fail "README: '$command' did not unpack what it should"
      fi
      ;;
    *) fail "README: install command '$command' names no file that was built" ;;
  esac
done

echo "sizes:"
(cd dist && stat -c '  %n %s bytes' -- *.deb *.rpm *.tar.gz)
echo "  highest glibc symbol version of the packaged binary: $highest"
if ((failures)); then
  echo "packaging: $failures check(s) failed" >&2
  exit 1
fi
echo "packaging: all checks passed"
