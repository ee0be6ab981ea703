#!/usr/bin/env bash
# What `sixgate node watch` costs: CPU time per check (one `nft -s list`,
# one `nft -j list`, two `ip -j route show`, reading /proc), measured by
# running watch with a 100 ms period for DURATION seconds in a scratch
# network namespace that holds the probe rewrite, egress SNAT and two routes.
# Then times a whole `sixgate node apply`. Needs root, nft, ip, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-20}
BIN=${SIXGATE:-target/release/sixgate}
[ -x "$BIN" ] || cargo build --release -p sixgate
ns=sg-bench-node-$$
tmp=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add up0 type veth peer name up1
ip -n "$ns" link set up0 up; ip -n "$ns" link set up1 up
ip -n "$ns" addr add 2001:db8:1::1/64 dev up0 nodad
ip -n "$ns" tuntap add dev tun64 mode tun; ip -n "$ns" link set tun64 up
cat > "$tmp/node.toml" <<CONF
[admin]
listen = "127.0.0.1:7779"   # inside the scratch namespace
[node]
uplink = "up0"
watch_period = "100ms"
[[node.rewrites]]
preset = "azure-lb-probe"
[node.egress]
pod_prefixes = ["fd00:40::/56"]
cluster_prefixes = ["fd00::/8"]
[[node.routes]]
prefix = "64:ff9b::/96"
dev = "tun64"
[[node.routes]]
prefix = "192.0.2.0/24"
dev = "tun64"
CONF
# Children (nft, ip, unshare) are reaped by sixgate, so their CPU time lands in
# the cutime/cstime fields of sixgate's /proc/PID/stat.
ip netns exec "$ns" "$BIN" --log-level warn node watch --config "$tmp/node.toml" &
pid=$!
sleep 2
checks() { ip netns exec "$ns" curl -s 127.0.0.1:7779/metrics | awk '/^sixgate_node_checks_total/{print $2}'; }
c0=$(checks)
read -r -a s0 < "/proc/$pid/stat"
sleep "$DURATION"
read -r -a s1 < "/proc/$pid/stat"
c1=$(checks)
hz=$(getconf CLK_TCK)
ticks=$(( (s1[13]+s1[14]+s1[15]+s1[16]) - (s0[13]+s0[14]+s0[15]+s0[16]) ))
checks=$(( c1 - c0 ))
echo "checks:                 $checks in ${DURATION}s"
echo "CPU (sixgate + tools):  $(awk -v t=$ticks -v hz=$hz 'BEGIN{printf "%.2f s", t/hz}')"
echo "CPU per check:          $(awk -v t=$ticks -v hz=$hz -v c=$checks 'BEGIN{printf "%.2f ms", 1000*t/hz/c}')"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
# A whole `sixgate node apply` (check with nft -c, routes, nft -f), wall time.
n=20
start=$(date +%s%N)
for _ in $(seq $n); do ip netns exec "$ns" "$BIN" --log-level warn node apply --config "$tmp/node.toml" >/dev/null; done
end=$(date +%s%N)
echo "sixgate node apply:     $(awk -v d=$((end-start)) -v n=$n 'BEGIN{printf "%.1f ms", d/1e6/n}') wall, mean of $n"
