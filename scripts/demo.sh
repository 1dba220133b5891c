#!/usr/bin/env bash
# demo.sh - the README's first command: a whole campaign end to end, on
# this machine only. Installs what edm needs, builds it, then:
#   1. makes a DKIM key (edm dkim keygen) and a GBK copy of the example
#      list (as Excel on Chinese Windows exports it);
#   2. cleans the list with `edm validate` (DNS answered by a dnsmasq on a
#      loopback port: no real resolver is asked);
#   3. starts `edm sink` (a capture SMTP server) on 127.0.0.1, and sends the
#      campaign to it with `edm send` (relay mode, DKIM-signed);
#   4. starts `edm track` on 127.0.0.1, opens one delivered message's
#      pixel and clicks its first link (curl), as a reader would;
#   5. runs `edm report` and prints where results, report.csv/.html and
#      the messages are.
# Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
[ -f build/build.ninja ] || { rm -rf build; meson setup build >/dev/null; }
ninja -C build >/dev/null

edm=$(pwd)/build/edm
out=$(pwd)/examples/spring-sale.out
demo=$out/demo
rm -rf "$demo"
mkdir -p "$demo"

# 1. a DKIM key and a GBK list
"$edm" dkim keygen --domain acme.example --selector demo \
	--out "$demo/dkim-demo.pem" >"$demo/dkim-record.txt"
iconv -f utf-8 -t gbk examples/recipients.csv >"$demo/recipients-gbk.csv"

# The demo config: the example campaign, read as GBK, signed, sent to the
# local sink. (Your own campaign names its real relay here instead.)
sink_port_file=$demo/sink.port
sed -e "s|^recipients = .*|recipients = $demo/recipients-gbk.csv|" \
    -e "s|^encoding = .*|encoding = gbk|" \
    -e "s|^suppression = .*|suppression = $(pwd)/examples/suppressed.csv|" \
    -e "s|^text = .*|text = $(pwd)/examples/body.txt|" \
    -e "s|^html = .*|html = $(pwd)/examples/body.html|" \
    -e "s|^; out_dir.*|out_dir = $demo/campaign|" \
    examples/spring-sale.ini >"$demo/spring-sale.ini"

echo "== edm validate (GBK list, DNS from a loopback dnsmasq) =="
bash tests/with_dnsmasq.sh sh -c \
	'"$1" validate --resolver "$EDM_TEST_DNS" --out-dir "$2" "$3"' \
	sh "$edm" "$demo/validate" "$demo/spring-sale.ini"
echo

# 3. the capture server, then the campaign
"$edm" sink --listen 127.0.0.1:0 --port-file "$sink_port_file" \
	--maildir "$demo/maildir" >"$demo/sink.log" 2>&1 &
sink_pid=$!
trap 'kill $sink_pid ${track_pid:-} 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$sink_port_file" ] && break; sleep 0.1; done
port=$(cat "$sink_port_file")
track_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# the tracking secret: tokens in the messages are HMACs under it
EDM_TRACKING_SECRET=$(openssl rand -hex 32)
export EDM_TRACKING_SECRET
# send the cleaned list (validate writes clean.csv in UTF-8); suppressions
# edm adds during the demo go to a copy, not to the example file
sed -i -e "s|^suppression = .*|suppression = $demo/suppressed.csv|" \
    -e "s|^recipients = .*|recipients = $demo/validate/clean.csv|" \
    -e "s|^encoding = .*|encoding = utf-8|" "$demo/spring-sale.ini"
cp examples/suppressed.csv "$demo/suppressed.csv"
cat >>"$demo/spring-sale.ini" <<EOF

[dkim]
domain = acme.example
selector = demo
key = $demo/dkim-demo.pem

[smtp]
mode = relay
relay = 127.0.0.1:$port     ; edm sink, started by this script
tls = none                  ; loopback only; a real relay: implicit (465) or starttls
retry_first = 2s
retry_for = 10s

[domain *]
connect_rate = 100/s

[tracking]
base_url = http://127.0.0.1:$track_port   ; a real campaign: https://t.your-domain behind a TLS proxy
listen = 127.0.0.1:$track_port
EOF

echo "== edm send (to edm sink on 127.0.0.1:$port) =="
set +e
"$edm" send "$demo/spring-sale.ini"
rc=$?
set -e
sleep 0.3
echo
echo "== what the sink received =="
cat "$demo/sink.log"
echo
echo "== edm track (127.0.0.1:$track_port): a reader opens a message and clicks =="
"$edm" track "$demo/spring-sale.ini" 2>"$demo/track.log" &
track_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$demo/track.log" 2>/dev/null && break; sleep 0.1; done
first=$(ls "$demo/maildir/new" | head -1)
urls=$(/usr/bin/python3 - "$demo/maildir/new/$first" <<'PY'
import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
html = m.get_body(("html",)).get_content()
print(re.search(r'src="([^"]+/o/[^"]+)"', html).group(1))
print(re.search(r'href="([^"]+/c/[^"]+)"', html).group(1))
PY
)
for u in $urls; do
	curl -s -o /dev/null -w "  GET %{url_effective} -> %{http_code} %{redirect_url}\n" \
		-A "Mozilla/5.0 (demo reader)" "$u"
done
kill -TERM "$track_pid"; wait "$track_pid" || true
echo "  (a click this soon after delivery counts as a link scanner's: machine=1,"
echo "   [tracking] scanner_window; a person's click later counts as a click)"
echo
echo "== edm report =="
"$edm" report "$demo/spring-sale.ini"
echo
echo "Results:"
echo "  $demo/campaign/results.csv   one row per recipient (docs/reports.md)"
echo "  $demo/campaign/report.csv    delivery, opens, clicks, unsubscribes per recipient"
echo "  $demo/campaign/report.html   the campaign report page (open in a browser)"
echo "  $demo/campaign/events.csv    opens and clicks recorded by edm track"
echo "  $demo/maildir/new/            the messages as received (open with mutt -f)"
echo "  $demo/validate/rejects.csv    rows edm validate rejected, with the reason"
echo "  $demo/dkim-record.txt         the DKIM TXT record to publish"
exit $rc
