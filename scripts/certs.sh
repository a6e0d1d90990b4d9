#!/bin/sh
# Makes the lab's CA and a server certificate for localhost, 127.0.0.1 and ::1 (and nginx, the
# name compose's app calls the lab's nginx by: /debug/outbound), once.
# Used natively (scripts/lab certs) and by compose's one-shot certs service; needs only openssl.
#   certs.sh DIR    -> DIR/ca.pem (trust this), DIR/ca-key.pem, DIR/server.pem, DIR/server-key.pem
set -eu
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

if [ -s ca.pem ] && [ -s server.pem ] && [ -s server-key.pem ] &&
    openssl verify -CAfile ca.pem server.pem >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in server.pem >/dev/null 2>&1 &&
    openssl x509 -noout -ext subjectAltName -in server.pem 2>/dev/null | grep -q "DNS:nginx,"; then
    exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A CA valid for 30 more days is kept: clients and browsers that trust ca.pem keep working
# when only the server certificate (397 days) is renewed.
if [ -s ca.pem ] && [ -s ca-key.pem ] && openssl x509 -checkend 2592000 -noout -in ca.pem >/dev/null 2>&1; then
    cp ca.pem ca-key.pem "$work/"
    made="server certificate renewed"
else
    openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca-key.pem"
    openssl req -x509 -new -key "$work/ca-key.pem" -sha256 -days 3650 \
        -subj "/O=proxylab/CN=proxylab local CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$work/ca.pem"
    made="new CA at $dir/ca.pem"
fi

openssl ecparam -name prime256v1 -genkey -noout -out "$work/server-key.pem"
openssl req -new -key "$work/server-key.pem" -subj "/O=proxylab/CN=localhost" -out "$work/server.csr"
cat >"$work/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:nginx,IP:127.0.0.1,IP:::1
EXT
# 397 days: the longest validity browsers accept for a server certificate.
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
    -CAcreateserial -days 397 -sha256 -extfile "$work/server.ext" -out "$work/server.pem"

# The CA and the certificate are public; the nginx master reads the key before dropping privileges.
chmod 644 "$work/ca.pem" "$work/server.pem"
chmod 600 "$work/ca-key.pem" "$work/server-key.pem"
mv "$work/ca-key.pem" "$work/server-key.pem" "$work/ca.pem" "$work/server.pem" .
echo "certs: $made"
