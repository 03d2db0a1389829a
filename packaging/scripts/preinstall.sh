#!/bin/sh
# The group that may read /etc/rolesanywhere-helper/config.toml (mode 0640): it must exist
# before the file is unpacked with it. Kept on removal, like the config file.
set -e
if ! getent group rolesanywhere-helper >/dev/null; then
  groupadd --system rolesanywhere-helper
fi
