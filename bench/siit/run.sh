#!/usr/bin/env bash
# SIIT data path, side by side: sixgate, TAYGA (the peer, same EAM mapping,
# also over TUN) and plain kernel IPv6 forwarding (the anchor), between
# namespaces:
#
#   sg-siitb-c6 (2001:db8:6::2) --- sg-siitb-gw (translator) --- sg-siitb-s4 (198.51.100.2)
#
# c6 reaches s4 as 2001:db8:46::2 (EAM), s4 sees c6 as 192.0.2.6 (EAM).
# Measures with iperf3: TCP one stream, TCP four streams, UDP 64-byte
# datagrams (packets/s received), and the translator's CPU use during the
# one-stream run. Prints a Markdown table of the medians.
#
#   bench/siit/run.sh [ROUNDS]      (as root; DUR=seconds per run, default 10;
#                                    MODES="sixgate sixgate_plain tayga kernel" by default,
#                                    sixgate_plain being sixgate with offload = false;
#                                    SIXGATE_QUEUES=N for a multi-queue TUN,
#                                    SIXGATE_OFFLOAD=false: no offloads in mode sixgate)
#
# TAYGA refuses 64:ff9b:1::/96 as "reserved", so it gets a network-specific
# pool6 (unused here: both hosts are EAM entries, "map" lines in TAYGA).
#
# Needs a release build (cargo build --release -p sixgate, or SIXGATE_BIN).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
DUR=${DUR:-10}
MODES=${MODES:-"sixgate sixgate_plain tayga kernel"}
BIN=${SIXGATE_BIN:-${CARGO_TARGET_DIR:-target}/release/sixgate}
WORK=$(mktemp -d /tmp/sixgate-bench-siit.XXXXXX)
C6=sg-siitb-c6 GW=sg-siitb-gw S4=sg-siitb-s4

need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v tayga >/dev/null || need+=(tayga)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p sixgate" >&2; exit 1; }

translator_pid=""
teardown() {
  [ -n "$translator_pid" ] && kill "$translator_pid" 2>/dev/null && wait "$translator_pid" 2>/dev/null || true
  translator_pid=""
  for ns in $C6 $GW $S4; do ip netns del "$ns" 2>/dev/null || true; done
}
trap 'teardown; rm -rf "$WORK"' EXIT

setup() {
  teardown
  for ns in $C6 $GW $S4; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip netns exec $GW sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip link add sgsb-c6 netns $C6 type veth peer name sgsb-g6 netns $GW
  ip link add sgsb-s4 netns $S4 type veth peer name sgsb-g4 netns $GW
  for pair in "$C6 sgsb-c6" "$GW sgsb-g6" "$S4 sgsb-s4" "$GW sgsb-g4"; do
    set -- $pair; ip -n "$1" link set "$2" up
  done
  ip -n $C6 -6 addr add 2001:db8:6::2/64 dev sgsb-c6 nodad
  ip -n $GW -6 addr add 2001:db8:6::1/64 dev sgsb-g6 nodad
  ip -n $C6 -6 route add default via 2001:db8:6::1
  ip -n $GW addr add 198.51.100.1/24 dev sgsb-g4
  ip -n $S4 addr add 198.51.100.2/24 dev sgsb-s4
  ip -n $S4 route add default via 198.51.100.1
}

start_sixgate_plain() { SIXGATE_OFFLOAD=false start_sixgate; }

start_sixgate() {
  cat >"$WORK/siit.toml" <<EOF
[admin]
listen = "127.0.0.1:0"
[siit]
tun = "sgsb-siit"
manage_routes = true
queues = ${SIXGATE_QUEUES:-1}
offload = ${SIXGATE_OFFLOAD:-true}
own_ipv4 = "192.0.2.1"
own_ipv6 = "2001:db8:ff::1"
eam = [
  { ipv4 = "198.51.100.2", ipv6 = "2001:db8:46::2", route = "ipv6" },
  { ipv4 = "192.0.2.6", ipv6 = "2001:db8:6::2", route = "ipv4" },
]
EOF
  ip netns exec $GW "$BIN" --log-level warn siit --config "$WORK/siit.toml" &
  translator_pid=$!
  for _ in $(seq 100); do
    ip -n $GW route show dev sgsb-siit 2>/dev/null | grep -q 192.0.2.6 && return
    sleep 0.05
  done
  echo "sixgate did not come up" >&2; exit 1
}

start_tayga() {
  mkdir -p "$WORK/tayga"
  cat >"$WORK/tayga.conf" <<EOF
tun-device sgsb-tayga
ipv4-addr 192.0.2.1
ipv6-addr 2001:db8:ff::1
prefix 2001:db8:64::/96
map 198.51.100.2 2001:db8:46::2
map 192.0.2.6 2001:db8:6::2
data-dir $WORK/tayga
EOF
  ip netns exec $GW tayga --config "$WORK/tayga.conf" --mktun >/dev/null
  ip -n $GW link set sgsb-tayga up
  ip -n $GW route add 192.0.2.0/24 dev sgsb-tayga
  ip -n $GW -6 route add 2001:db8:46::2/128 dev sgsb-tayga
  ip -n $GW -6 route add 2001:db8:ff::1/128 dev sgsb-tayga
  ip netns exec $GW tayga --config "$WORK/tayga.conf" --nodetach &
  translator_pid=$!
  sleep 0.5
}

start_kernel() {
  # The anchor: s4 gets the IPv6 address c6 aims at, plain forwarding.
  ip -n $S4 -6 addr add 2001:db8:46::2/64 dev sgsb-s4 nodad
  ip -n $GW -6 addr add 2001:db8:46::1/64 dev sgsb-g4 nodad
  ip -n $S4 -6 route add default via 2001:db8:46::1
}

cpu_ticks() { # utime + stime of a process, in clock ticks
  [ -n "$translator_pid" ] || { echo 0; return; }
  awk '{print $14 + $15}' "/proc/$translator_pid/stat"
}

iperf_json() { # ARGS... -> JSON file path
  local out="$WORK/iperf.$RANDOM.json"
  ip netns exec $C6 iperf3 -c 2001:db8:46::2 -t "$DUR" -J "$@" >"$out"
  echo "$out"
}

declare -A results
load0=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    setup
    "start_$mode"
    server_addr=198.51.100.2
    [ "$mode" = kernel ] && server_addr=2001:db8:46::2
    ip netns exec $S4 iperf3 -s -B "$server_addr" -D --pidfile "$WORK/iperf3.pid"
    sleep 0.3
    ip netns exec $C6 ping -c 2 -W 2 2001:db8:46::2 >/dev/null

    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks)
    one=$(iperf_json)
    t1=$(cpu_ticks)
    four=$(iperf_json -P 4)
    udp=$(iperf_json -u -b 0 -l 64)
    kill "$(cat "$WORK/iperf3.pid")" 2>/dev/null || true

    tcp1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9)' "$one")
    tcp4=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9)' "$four")
    udp=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["end"]["sum"]; print((s["packets"]-s["lost_packets"])/s["seconds"]/1e3)' "$udp")
    cpu=$(python3 -c "print(($t1 - $t0) / $hz / $DUR * 100)")
    results[$mode,tcp1]+="$tcp1 "
    results[$mode,tcp4]+="$tcp4 "
    results[$mode,udp]+="$udp "
    results[$mode,cpu]+="$cpu "
    # Throughput per core the translator used: robust to a busy machine,
    # where a user-space translator gets only its share of the CPU.
    results[$mode,eff]+="$(python3 -c "print($tcp1 / ($cpu / 100) if $cpu > 0 else 0)") "
    printf 'round %s %-8s tcp1 %.2f Gbit/s  tcp4 %.2f Gbit/s  udp64 %.0f kpps  cpu %.0f%%\n' "$round" "$mode" "$tcp1" "$tcp4" "$udp" "$cpu" >&2
  done
done
teardown

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' $1; }
echo
echo "SIIT, c6 -> gw -> s4, veth MTU 1500, iperf3 ${DUR} s, median of $ROUNDS rounds, load average before: $load0"
echo
echo "| path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | UDP 64 B received (kpps) | translator CPU, 1 stream (% of a core) | TCP 1 stream per translator core (Gbit/s) |"
echo "|---|---|---|---|---|---|"
for mode in $MODES; do
  cpu=$(median "${results[$mode,cpu]}")
  eff=$(median "${results[$mode,eff]}")
  [ "$mode" = kernel ] && cpu="in kernel" && eff="-"
  echo "| $mode | $(median "${results[$mode,tcp1]}") | $(median "${results[$mode,tcp4]}") | $(median "${results[$mode,udp]}") | $cpu | $eff |"
done
