#!/bin/sh
# gen_test_certs.sh DIR - throw-away TLS certificates for the tests, made
# with the openssl CLI (EC P-256 keys, valid 30 days from now):
#   ca.pem, ca.key          a test CA ("edm test CA")
#   server.pem, server.key  leaf signed by the CA: CN mx.test,
#                           SAN DNS:mx.test, DNS:localhost, IP:127.0.0.1
#   wrong.pem, wrong.key    leaf signed by the same CA: SAN DNS:other.test
#                           only (host name mismatch tests)
#   self.pem, self.key      self-signed leaf for mx.test (untrusted tests)
# Used by tests/test_tls.c and the STARTTLS integration tests. The keys are
# unencrypted test keys: never use them for anything else.
# Exit status 0 on success; the openssl output is shown only on failure.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/edm-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# A minimal config, so the system openssl.cnf adds no extensions of its own.
cat > "$tmp/req.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

# run CMD...: run quietly, show its output and stop if it fails.
run() {
	if ! "$@" > "$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		echo "$0: failed: $*" >&2
		exit 1
	fi
}

# newkey FILE: an EC P-256 private key in PEM.
newkey() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1"
}

# leaf NAME CN SAN: NAME.key and NAME.pem signed by the CA.
leaf() {
	newkey "$dir/$1.key"
	run openssl req -new -config "$tmp/req.cnf" -key "$dir/$1.key" \
		-subj "/CN=$2" -out "$tmp/$1.csr"
	cat > "$tmp/$1.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $3
EOF
	run openssl x509 -req -in "$tmp/$1.csr" -CA "$dir/ca.pem" \
		-CAkey "$dir/ca.key" -CAcreateserial -CAserial "$tmp/ca.srl" \
		-days 30 -sha256 -extfile "$tmp/$1.ext" -out "$dir/$1.pem"
}

newkey "$dir/ca.key"
run openssl req -x509 -config "$tmp/req.cnf" -extensions ca_ext \
	-key "$dir/ca.key" -subj "/CN=edm test CA" -days 30 -sha256 \
	-out "$dir/ca.pem"

leaf server mx.test "DNS:mx.test, DNS:localhost, IP:127.0.0.1"
leaf wrong other.test "DNS:other.test"

cat > "$tmp/self.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:mx.test, IP:127.0.0.1
EOF
newkey "$dir/self.key"
run openssl req -new -config "$tmp/req.cnf" -key "$dir/self.key" \
	-subj "/CN=mx.test" -out "$tmp/self.csr"
run openssl x509 -req -in "$tmp/self.csr" -signkey "$dir/self.key" \
	-days 30 -sha256 -extfile "$tmp/self.ext" -out "$dir/self.pem"
