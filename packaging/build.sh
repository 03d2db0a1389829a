#!/usr/bin/env bash
# Builds the release binary for glibc 2.17 and newer (cargo-zigbuild with zig as the
# linker, so it runs on RHEL 7 and Ubuntu 18.04 onwards and still loads PKCS#11 modules
# with dlopen), then makes in dist/:
#   rolesanywhere-helper_VERSION-1_amd64.deb     (nfpm, from packaging/nfpm.yaml)
#   rolesanywhere-helper-VERSION-1.x86_64.rpm    (nfpm, the same file)
#   rolesanywhere-helper-VERSION-x86_64-linux-gnu.tar.gz
#   SHA256SUMS
# The tools are installed first when missing (packaging/tools.sh).
#
#   packaging/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

packaging/tools.sh
export PATH="$root/packaging/.venv/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

triple=x86_64-unknown-linux-gnu
cargo zigbuild --release --locked --quiet --target "$triple.2.17"

# Package metadata from Cargo.toml, and where cargo builds (CARGO_TARGET_DIR or target/).
meta=$(cargo metadata --no-deps --format-version 1 --locked)
field() {
  python3 -c 'import json,sys; p=[p for p in json.load(sys.stdin)["packages"] if p["name"]=="rolesanywhere-helper"][0]; print(p[sys.argv[1]])' "$1" <<<"$meta"
}
target_dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' <<<"$meta")
binary="$target_dir/$triple/release/rolesanywhere-helper"
PKG_NAME=$(field name)
PKG_VERSION=$(field version)
PKG_DESCRIPTION=$(field description)
PKG_LICENSE=$(field license)
export PKG_NAME PKG_VERSION PKG_DESCRIPTION PKG_LICENSE

# The staged tree the packages and the tarball are made from.
PKG_STAGE="$target_dir/package/stage"
export PKG_STAGE
STAGE=$PKG_STAGE
rm -rf "$STAGE" dist
mkdir -p "$STAGE/man" "$STAGE/completions" "$STAGE/units" dist
install -m 0755 "$binary" "$STAGE/rolesanywhere-helper"

# A man page per subcommand, from the clap definitions.
cargo run --quiet --locked --example manpages -- "$STAGE/man"
gzip -9n "$STAGE"/man/*.1

# Completion scripts, by the binary's own `completion` (named for rolesanywhere-helper).
"$STAGE/rolesanywhere-helper" completion bash >"$STAGE/completions/rolesanywhere-helper.bash"
"$STAGE/rolesanywhere-helper" completion zsh >"$STAGE/completions/_rolesanywhere-helper"
"$STAGE/rolesanywhere-helper" completion fish >"$STAGE/completions/rolesanywhere-helper.fish"

# The units of systemd/ with the packaged paths (the binary in /usr/bin, the README in
# /usr/share/doc); a unit that no longer names the old path stops the build.
for unit in systemd/*.service systemd/*.socket; do
  sed -e 's#/usr/local/bin\b#/usr/bin#g' \
    -e 's#/usr/local/share/doc/#/usr/share/doc/#g' "$unit" >"$STAGE/units/${unit##*/}"
  if grep -v '^#' "$STAGE/units/${unit##*/}" | grep -q /usr/local/; then
    echo "packaging: $unit names a /usr/local path this script does not rewrite" >&2
    exit 1
  fi
done
grep -q '^ExecStart=/usr/bin/rolesanywhere-helper ' "$STAGE/units/rolesanywhere-helper.service" || {
  echo "packaging: the packaged rolesanywhere-helper.service does not start /usr/bin/rolesanywhere-helper" >&2
  exit 1
}

# nfpm expands variables in only some fields (not `license`, nor `contents`): the metadata
# and the staged tree's path are written into a copy of its file.
python3 - packaging/nfpm.yaml "$target_dir/package/nfpm.yaml" <<'PY'
import json, os, re, sys
text = open(sys.argv[1]).read()
# Escaped as in a JSON string, which is also a YAML double-quoted one.
text = re.sub(r"\$\{(PKG_[A-Z]+)\}", lambda m: json.dumps(os.environ[m.group(1)])[1:-1], text)
open(sys.argv[2], "w").write(text)
PY
nfpm package --config "$target_dir/package/nfpm.yaml" --packager deb --target dist/ >/dev/null
nfpm package --config "$target_dir/package/nfpm.yaml" --packager rpm --target dist/ >/dev/null

# The tarball: the binary, the units and config of systemd/ as its README installs them
# (binary in /usr/local/bin), man pages and completions.
tree="$PKG_NAME-$PKG_VERSION-x86_64-linux-gnu"
tar_root="$target_dir/package/tar"
rm -rf "$tar_root"
mkdir -p "$tar_root/$tree/man/man1" "$tar_root/$tree/completions" "$tar_root/$tree/systemd"
install -m 0755 "$STAGE/rolesanywhere-helper" "$tar_root/$tree/"
install -m 0644 README.md LICENSE "$tar_root/$tree/"
install -m 0644 systemd/* "$tar_root/$tree/systemd/"
install -m 0644 "$STAGE"/man/*.1.gz "$tar_root/$tree/man/man1/"
install -m 0644 "$STAGE"/completions/* "$tar_root/$tree/completions/"
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar -C "$tar_root" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -czf "dist/$tree.tar.gz" "$tree"

(cd dist && sha256sum -- *.deb *.rpm *.tar.gz >SHA256SUMS)
ls -l dist >&2
