#!/usr/bin/env bash
# Make the TLS and node-authentication material of a skydistill deployment with openssl and
# ssh-keygen (the same files as `skydistill certs`):
#
#   deploy/certs.sh OUT_DIR [--name superlink.example.org]... [--agent satellite-1]...
#
#   OUT_DIR/ca.crt, ca.key          private CA (keep ca.key offline)
#   OUT_DIR/server.pem, server.key  SuperLink certificate; SANs 127.0.0.1, localhost + --name
#   OUT_DIR/agents/NAME, NAME.pub   per-agent ECDSA P-384 key pair, OpenSSH format
#                                   (flower-supernode --auth-supernode-private-key NAME;
#                                    skydistill register NAME.pub)
# Existing files are kept: re-run with more --agent options to add agents.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [--name DNS_OR_IP]... [--agent NAME]..." >&2; exit 2; }
[[ $# -ge 1 ]] || usage
out=$1; shift
san="IP:127.0.0.1,DNS:localhost"
agents=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --name)
      [[ $# -ge 2 ]] || usage
      if [[ $2 =~ ^[0-9.]+$ || $2 == *:* ]]; then san+=",IP:$2"; else san+=",DNS:$2"; fi
      shift 2 ;;
    --agent) [[ $# -ge 2 ]] || usage; agents+=("$2"); shift 2 ;;
    *) usage ;;
  esac
done
command -v openssl >/dev/null || { echo "openssl not found: apt-get install openssl" >&2; exit 1; }

mkdir -p "$out/agents"
cd "$out"
umask 077
if [[ ! -f ca.crt || ! -f ca.key ]]; then
  openssl ecparam -name secp384r1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha384 -days 3650 -subj "/CN=skydistill CA" -out ca.crt
fi
if [[ ! -f server.pem || ! -f server.key ]]; then
  openssl ecparam -name secp384r1 -genkey -noout -out server.key
  openssl req -new -key server.key -subj "/CN=skydistill-superlink" -out server.csr
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$san" > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -sha384 -extfile server.ext -out server.pem
  rm -f server.csr
fi
chmod 644 ca.crt server.pem
for name in "${agents[@]}"; do
  if [[ ! -f agents/$name ]]; then
    command -v ssh-keygen >/dev/null || {
      echo "ssh-keygen not found (apt-get install openssh-client), or use: skydistill certs" >&2
      exit 1
    }
    ssh-keygen -q -t ecdsa -b 384 -N "" -C "skydistill-$name" -f "agents/$name"
  fi
done
echo "CA $out/ca.crt; server $out/server.pem (SANs $san); ${#agents[@]} agent key(s) in $out/agents"
