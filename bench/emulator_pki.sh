# Sourced by the bench scripts: the ARNs they use, and `start_emulator DIR KEY_TYPE`, which
# makes a dev PKI of KEY_TYPE in DIR and starts the emulator trusting it in the background.
# It sets $emu (its pid, for the caller's trap), $url, $ca (its TLS CA, also exported as
# AWS_CA_BUNDLE, which the official helper reads too) and $flags (the credential flags of
# both helpers for the PKI's leaf). Expects $bin and $work.
ta=arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/bench
pr=arn:aws:rolesanywhere:us-east-1:111122223333:profile/bench
role=arn:aws:iam::111122223333:role/bench

start_emulator() {
  local dir=$1 key_type=$2
  "$bin" pki init "$dir" --key-type "$key_type" >/dev/null
  "$bin" emulate --trust-anchor "$dir/root-ca.pem" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
  emu=$!
  for _ in $(seq 100); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
  ca=$(grep -o '/[^ ]*\.pem' "$work/emu.out" | head -1)
  [ -n "$url" ] && [ -f "$ca" ] || { echo "emulator did not start"; cat "$work/emu.err"; exit 1; }
  export AWS_CA_BUNDLE=$ca
  flags=(--certificate "$dir/leaf.pem" --private-key "$dir/leaf.key" --trust-anchor-arn "$ta"
    --profile-arn "$pr" --role-arn "$role" --endpoint "$url")
}
