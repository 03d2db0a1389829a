#!/usr/bin/env bash
# Regenerates fuzz/seeds/ (committed; run.sh copies them into a working corpus). Keys and
# certificates come from `rolesanywhere-helper pki init` and openssl, so they are fresh
# each time; the request heads, CreateSession answers and configs are written out here.
# Encrypted keys and PKCS#12 files use the password the targets try: fuzz-password.
set -euo pipefail
cd "$(dirname "$0")"
seeds=$PWD/seeds
helper=${HELPER:-}
if [[ -z $helper ]]; then
    cargo build --quiet --manifest-path ../Cargo.toml
    helper=$(cd .. && pwd)/target/debug/rolesanywhere-helper
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pw=fuzz-password

rm -rf "$seeds"
mkdir -p "$seeds"/{certificate,private_key,pkcs12,pkcs11_uri,serve_config,serve_route,serve_http,create_session_response,sts_response,credentials_file}

# --- keys and certificates -----------------------------------------------------------
"$helper" pki init "$work/rsa" --intermediate >/dev/null
"$helper" pki init "$work/p256" --key-type p256 >/dev/null
"$helper" pki init "$work/p384" --key-type p384 >/dev/null
# pki init makes no P-521 keys: a self-signed end-entity certificate from openssl.
mkdir "$work/p521"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -subj /CN=p521 -days 30 \
    -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
    -keyout "$work/p521/leaf.key" -out "$work/p521/leaf.pem" 2>/dev/null

c=$seeds/certificate
cp "$work/rsa/leaf.pem" "$c/rsa-leaf.pem"
cp "$work/rsa/leaf-fullchain.pem" "$c/rsa-fullchain.pem"
cp "$work/p256/leaf.pem" "$c/p256-leaf.pem"
cp "$work/p384/leaf.pem" "$c/p384-leaf.pem"
cp "$work/p521/leaf.pem" "$c/p521-leaf.pem"
openssl x509 -in "$work/p256/leaf.pem" -outform DER -out "$c/p256-leaf.der"
openssl x509 -in "$work/rsa/intermediate-ca.pem" -outform DER -out "$c/rsa-intermediate.der"
# `openssl x509 -text` output: text around the block.
openssl x509 -in "$work/p256/leaf.pem" -text >"$c/p256-leaf-with-text.pem"
# A combined key + certificate file, and a bundle of CAs.
cat "$work/p256/leaf.key" "$work/p256/leaf.pem" >"$c/p256-combined.pem"
cat "$work/rsa/intermediate-ca.pem" "$work/rsa/root-ca.pem" >"$c/rsa-bundle.pem"
# A certificate whose key is of an unsupported type.
openssl req -x509 -newkey ed25519 -keyout "$work/ed.key" -nodes -subj /CN=ed25519 -days 30 \
    -out "$c/ed25519.pem" 2>/dev/null

k=$seeds/private_key
cp "$work/p256/leaf.key" "$k/p256-pkcs8.pem"
cp "$work/p384/leaf.key" "$k/p384-pkcs8.pem"
cp "$work/p521/leaf.key" "$k/p521-pkcs8.pem"
cp "$work/rsa/leaf.key" "$k/rsa-pkcs8.pem"
openssl pkey -in "$work/p256/leaf.key" -outform DER -out "$k/p256-pkcs8.der"
openssl rsa -in "$work/rsa/leaf.key" -traditional -out "$k/rsa-pkcs1.pem" 2>/dev/null
openssl rsa -in "$work/rsa/leaf.key" -traditional -outform DER -out "$k/rsa-pkcs1.der" 2>/dev/null
openssl ec -in "$work/p256/leaf.key" -out "$k/p256-sec1.pem" 2>/dev/null
openssl ec -in "$work/p384/leaf.key" -outform DER -out "$k/p384-sec1.der" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -out "$k/p256-sec1-with-params.pem"
openssl ec -in "$work/p256/leaf.key" -param_enc explicit -out "$k/p256-explicit-params.pem" 2>/dev/null
openssl ecparam -name secp256k1 -genkey -noout -out "$k/secp256k1-sec1.pem"
cp "$work/ed.key" "$k/ed25519-pkcs8.pem"
# Encrypted PKCS#8 in the schemes the reader supports, and ones it names and refuses. The
# PBKDF2 iteration count is low so that each run of the target is fast.
openssl pkcs8 -topk8 -in "$work/p256/leaf.key" -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 10 \
    -passout pass:$pw -out "$k/p256-pbes2-aes256.pem"
openssl pkcs8 -topk8 -in "$work/p256/leaf.key" -v2 aes-128-cbc -v2prf hmacWithSHA1 -iter 10 \
    -passout pass:$pw -outform DER -out "$k/p256-pbes2-aes128.der"
openssl pkcs8 -topk8 -in "$work/p384/leaf.key" -v2 des3 -iter 10 \
    -passout pass:$pw -out "$k/p384-pbes2-3des.pem"
openssl pkcs8 -topk8 -in "$work/p256/leaf.key" -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 \
    -passout pass:$pw -out "$k/p256-scrypt.pem"
openssl pkcs8 -topk8 -in "$work/p256/leaf.key" -v1 PBE-SHA1-3DES -iter 10 \
    -passout pass:$pw -out "$k/p256-pkcs12-pbe.pem"
openssl ec -in "$work/p256/leaf.key" -aes128 -passout pass:$pw -out "$k/p256-legacy-encrypted.pem" 2>/dev/null

p=$seeds/pkcs12
openssl pkcs12 -export -in "$work/p256/leaf.pem" -inkey "$work/p256/leaf.key" \
    -passout pass:$pw -iter 10 -maciter -out "$p/p256-aes.p12" 2>/dev/null
openssl pkcs12 -export -in "$work/p384/leaf.pem" -inkey "$work/p384/leaf.key" \
    -passout pass: -iter 10 -out "$p/p384-empty-password.p12" 2>/dev/null
openssl pkcs12 -export -in "$work/rsa/leaf.pem" -inkey "$work/rsa/leaf.key" \
    -certfile "$work/rsa/intermediate-ca.pem" -passout pass:$pw -iter 10 \
    -out "$p/rsa-with-chain.p12" 2>/dev/null
openssl pkcs12 -export -legacy -in "$work/p256/leaf.pem" -inkey "$work/p256/leaf.key" \
    -passout pass:$pw -iter 10 -out "$p/p256-legacy-3des-rc2.p12" 2>/dev/null
openssl pkcs12 -export -nokeys -in "$work/p256/leaf.pem" -passout pass:$pw -iter 10 \
    -out "$p/p256-no-key.p12" 2>/dev/null

# --- pkcs11: URIs (RFC 7512) -----------------------------------------------------------
u=$seeds/pkcs11_uri
pin=PINxMARKERx7f3a # the PIN the target checks is never shown
printf 'pkcs11:token=My%%20Token;object=host-key;type=private?pin-value=%s' "$pin" >"$u/pin-value.txt"
printf 'pkcs11:token=softhsm;object=leaf;id=%%01%%ab?pin-source=file:/etc/pin&module-path=/usr/lib/softhsm/libsofthsm2.so' >"$u/pin-source-module.txt"
printf 'pkcs11:token=A;manufacturer=SoftHSM%%20project;serial=3061fa19469fe4ab;model=SoftHSM%%20v2;library-manufacturer=L;library-description=D;library-version=2.6;slot-description=S;slot-manufacturer=M;slot-id=42;object=my%%20key;id=%%01%%ab;type=cert?x-vendor=1' >"$u/every-attribute.txt"
printf 'pkcs11:model=PKCS%%2315%%20emulated;token=SmartCard-HSM%%20(UserPIN);object=a%%3Bb?pin-value=%s&module-path=/usr/lib/opensc-pkcs11.so' "$pin" >"$u/escaped-pin-value.txt"
printf 'pkcs11:' >"$u/empty.txt"
printf 'pkcs11:token=a;;object=b?module-name=opensc' >"$u/malformed.txt"

# --- serve: config files ---------------------------------------------------------------
s=$seeds/serve_config
cp ../systemd/config.toml "$s/systemd-example.toml"
role() { # name, extra lines
    printf '[[role]]\nname = "%s"\ncertificate = "c.pem"\nprivate_key = "k.pem"\ntrust_anchor_arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a"\nprofile_arn = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p"\nrole_arn = "arn:aws:iam::111122223333:role/%s"\n%b\n' "$1" "$1" "$2"
}
{ printf 'bind = "127.0.0.1:9000"\nhop_limit = 1\nmax_connections = 64\n'
  role a 'imds = "127.0.0.1:9001"\necs_token_file = "/tmp/a.token"\nsession_duration = 900'
  role b 'imds = "[::1]:9002"\nprofile = "b-profile"\nrole_session_name = "host-1"'
} >"$s/two-roles.toml"
{ printf 'bind = "fd:sock"\nops = "127.0.0.1:9910"\n'
  role sock 'ecs_token_file = "/tmp/t"\necs_token_group = "0"'
} >"$s/socket-activated.toml"
role app 'imds = "127.0.0.1:9911"\nregion = "eu-west-1"\nendpoint = "https://localhost:8443"\nca_bundle = "ca.pem"\npkcs8_password_file = "password.txt"\nintermediates = "chain.pem"' \
    >"$s/one-role-all-keys.toml"
role a 'imds = "127.0.0.1:1"\ncolour = 1' >"$s/unknown-key.toml"
role hsm 'imds = "127.0.0.1:9913"\npkcs11_lib = "/usr/lib/softhsm/libsofthsm2.so"\nreuse_pin = true' |
    sed 's|^certificate = .*|certificate = "pkcs11:token=t;object=leaf"|; s|^private_key = .*|private_key = "pkcs11:token=t;object=leaf;type=private"|' \
    >"$s/pkcs11-role.toml"

# --- serve: request heads for the router, raw requests for the HTTP server -----------
r=$seeds/serve_route
printf 'PUT /latest/api/token\nx-aws-ec2-metadata-token-ttl-seconds: 21600\n' >"$r/imds-token.txt"
printf 'GET /latest/meta-data/iam/security-credentials/\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n' >"$r/imds-role-list.txt"
printf 'GET /latest/meta-data/iam/security-credentials/app\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n' >"$r/imds-credentials.txt"
printf 'GET /latest/meta-data/iam/security-credentials-extended/app\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n' >"$r/imds-extended.txt"
printf 'GET /latest/meta-data/iam/security-credentials/app\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\nX-Forwarded-For: 10.0.0.1\n' >"$r/imds-forwarded.txt"
printf 'GET /latest/meta-data/iam/security-credentials/app\n' >"$r/imds-v1.txt"
printf 'GET /ecs/app\nAuthorization: fuzz-ecs-token-app\n\nGET /ecs/starting\nAuthorization: fuzz-ecs-token-starting\n\nGET /ecs/stopped\nAuthorization: fuzz-ecs-token-stopped\n' >"$r/ecs-three-roles.txt"
printf 'POST /ecs/app\nAuthorization: fuzz-ecs-token-app\n\nGET /ecs/app\nAuthorization: Bearer fuzz-ecs-token-app\n' >"$r/ecs-refused.txt"
printf 'GET /latest/meta-data/iam/security-credentials/app\nHost: rebind.example.com:9911\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n\nGET /ecs/app\nHost: app.internal\nAuthorization: fuzz-ecs-token-app\n' >"$r/host-names.txt"
printf 'GET http://169.254.169.254/latest/meta-data/iam/security-credentials/app?x=1\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n' >"$r/absolute-form.txt"

h=$seeds/serve_http
crlf() { printf '%b' "$1" | sed 's/$/\r/'; }
crlf 'PUT /latest/api/token HTTP/1.1\nHost: 127.0.0.1:9911\nUser-Agent: Boto3/1.35.0 md/Botocore#1.35.0\nx-aws-ec2-metadata-token-ttl-seconds: 21600\nContent-Length: 0\n\n' >"$h/boto3-token.http"
crlf 'GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\nHost: 127.0.0.1:9911\nAccept-Encoding: identity\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n\nGET /latest/meta-data/iam/security-credentials/app HTTP/1.1\nHost: 127.0.0.1:9911\nx-aws-ec2-metadata-token: @IMDS_TOKEN@\n\n' >"$h/boto3-pipelined.http"
crlf 'GET /ecs/app HTTP/1.1\nHost: 127.0.0.1:9912\nAuthorization: fuzz-ecs-token-app\nConnection: close\n\n' >"$h/ecs-credentials.http"
crlf 'GET /ecs/starting HTTP/1.0\nAuthorization: fuzz-ecs-token-starting\n\n' >"$h/ecs-http10.http"
crlf 'PUT /latest/api/token HTTP/1.1\nHost: x\nx-aws-ec2-metadata-token-ttl-seconds: 60\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\nGET /nowhere HTTP/1.1\nHost: x\nX-Forwarded-For: 10.0.0.1\n\n' >"$h/chunked-then-404.http"

# --- CreateSession answers -------------------------------------------------------------
a=$seeds/create_session_response
exp=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '201\n{"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/app/abc","assumedRoleId":"AROAEXAMPLE:abc"},"credentials":{"accessKeyId":"ASIAEXAMPLE","expiration":"%s","secretAccessKey":"secret","sessionToken":"token"},"packedPolicySize":0,"roleArn":"arn:aws:iam::111122223333:role/app","sourceIdentity":"CN=host"}],"subjectArn":"arn:aws:rolesanywhere:us-east-1:111122223333:subject/x"}' "$exp" >"$a/201-credentials.txt"
printf '200\n{"credentialSet":[{"credentials":{"accessKeyId":"A","expiration":"2030-01-01T00:00:00.123+02:00","secretAccessKey":"s","sessionToken":"t"}}]}' >"$a/200-offset-expiration.txt"
printf '201\n{"credentialSet":[]}' >"$a/201-empty-set.txt"
printf '201\n{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t"}}]}' >"$a/201-no-expiration.txt"
printf '403 AccessDeniedException:http://internal.amazon.com/coral/com.amazonaws.rolesanywhere/\n{"message":"Untrusted Signing Certificate"}' >"$a/403-untrusted.txt"
printf '403\n{"__type":"com.amazonaws.rolesanywhere#AccessDeniedException","Message":"Signature expired"}' >"$a/403-type-in-body.txt"
printf '400 ValidationException\n{"message":"1 validation error detected: Value at '"'"'durationSeconds'"'"' failed"}' >"$a/400-validation.txt"
printf '404 ResourceNotFoundException\n{"code":"ResourceNotFoundException","message":"Trust anchor not found"}' >"$a/404-not-found.txt"
printf '429 ThrottlingException\n' >"$a/429-empty.txt"
printf '502\n<html><body><h1>502 Bad Gateway</h1></body></html>\n' >"$a/502-html.txt"

a=$seeds/sts_response
printf '200\n<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><SourceIdentity>CN=host</SourceIdentity><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId><Arn>arn:aws:sts::444455556666:assumed-role/workload/s</Arn></AssumedRoleUser><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>%s</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>' "$exp" >"$a/200-credentials.txt"
printf '200\n<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>' >"$a/200-incomplete.txt"
printf '403\n<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: a &amp; b &lt;c&gt; &#x41;<![CDATA[<raw>]]></Message></Error><RequestId>r-2</RequestId></ErrorResponse>' >"$a/403-access-denied.txt"
printf '400\n<ErrorResponse><Error><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error></ErrorResponse>' >"$a/400-expired-token.txt"
printf '503\n<html><body><h1>503 Service Unavailable</h1></body></html>\n' >"$a/503-html.txt"

# --- shared credentials files, rewritten for profile `fuzz` ---------------------------
f=$seeds/credentials_file
printf '# comment\r\n[fuzz]\r\naws_access_key_id = OLD\r\n; note\r\naws_secret_access_key=OLD\r\naws_session_token   =   OLD\r\n' >"$f/crlf-in-place.ini"
printf '[other]\naws_access_key_id = keep\n\n[fuzz]\nregion = eu-west-1\naws_session_token = x\nAWS_ACCESS_KEY_ID: y' >"$f/no-final-newline.ini"
printf '[fuzz]\nowner = Zo\xc3\xab\n\n[fuzz]\naws_access_key_id = second\n' >"$f/duplicated-section.ini"
printf '[a]\nx = 1\n# [fuzz]\n' >"$f/commented-header.ini"
printf '[default]\naws_access_key_id = A\n  continued = line\n[ fuzz ]\n' >"$f/spaced-header-last.ini"
: >"$f/empty.ini"

du -sh "$seeds"
