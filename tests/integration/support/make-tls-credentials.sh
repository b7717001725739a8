#!/usr/bin/env bash
# make-tls-credentials.sh DIR [HOSTNAME]: test credentials with gnutls-bin's
# certtool and psktool, in the layouts nbdkit, qemu-nbd and libnbd read:
#   DIR/ca-cert.pem ca-key.pem            a CA
#   DIR/server-cert.pem server-key.pem    signed by it, for HOSTNAME (default
#                                         localhost) and 127.0.0.1
#   DIR/client-cert.pem client-key.pem    signed by it (x509 client auth)
#   DIR/other-ca/ca-cert.pem              an unrelated CA (the "unknown CA" case)
#   DIR/expired/                          ca-cert.pem, and a server certificate
#                                         signed by it that expired in 2021
#   DIR/keys.psk                          psktool's user:hexkey for user "alice"
#                                         (qemu-nbd's tls-creds-psk reads this name)
#   DIR/wrong.psk                         "alice" with another key
set -euo pipefail
dir=$1 host=${2:-localhost}
mkdir -p "$dir/other-ca"
cd "$dir"
ct() { certtool "$@" >/dev/null 2>&1 || { echo "certtool $* failed" >&2; exit 1; }; }
ct --generate-privkey --outfile ca-key.pem
printf 'cn = unbd test CA\nca\ncert_signing_key\nexpiration_days = 30\n' >ca.info
ct --generate-self-signed --load-privkey ca-key.pem --template ca.info --outfile ca-cert.pem
ct --generate-privkey --outfile server-key.pem
printf 'cn = %s\ndns_name = %s\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n' \
  "$host" "$host" >server.info
ct --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem \
  --load-privkey server-key.pem --template server.info --outfile server-cert.pem
ct --generate-privkey --outfile client-key.pem
printf 'cn = unbd test client\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 30\n' >client.info
ct --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem \
  --load-privkey client-key.pem --template client.info --outfile client-cert.pem
ct --generate-privkey --outfile other-ca/ca-key.pem
printf 'cn = some other CA\nca\ncert_signing_key\nexpiration_days = 30\n' >other-ca/ca.info
ct --generate-self-signed --load-privkey other-ca/ca-key.pem --template other-ca/ca.info --outfile other-ca/ca-cert.pem
mkdir -p expired
cp ca-cert.pem expired/
ct --generate-privkey --outfile expired/server-key.pem
printf 'cn = %s\ndns_name = %s\ntls_www_server\nencryption_key\nsigning_key\nactivation_date = "2020-01-01 00:00:00 UTC"\nexpiration_date = "2021-01-01 00:00:00 UTC"\n' \
  "$host" "$host" >expired/server.info
ct --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem \
  --load-privkey expired/server-key.pem --template expired/server.info --outfile expired/server-cert.pem
rm -f keys.psk wrong.psk
psktool -u alice -p keys.psk >/dev/null 2>&1 || { echo "psktool failed" >&2; exit 1; }
psktool -u alice -p wrong.psk >/dev/null 2>&1 || { echo "psktool failed" >&2; exit 1; }
chmod 0600 ./*key.pem ./*/*key.pem keys.psk wrong.psk
