#!/usr/bin/env bash
# The two hosts of deploy/examples/siit.toml, as network namespaces beside
# this machine:
#
#   sg-demo-h6  2001:db8:6::2/64 --- (2001:db8:6::1) this machine (198.51.100.1) --- 198.51.100.2/24  sg-demo-h4
#
#   bench/siit/netns.sh up      create them, turn on IP forwarding here
#   bench/siit/netns.sh down    remove them, put forwarding back as it was
#
# Then, with `sixgate run --config deploy/examples/siit.toml` running here:
#   ip netns exec sg-demo-h6 ping 2001:db8:46::2     # h4, through the translator
#   ip netns exec sg-demo-h4 ping 192.0.2.6          # h6, through the translator
set -euo pipefail

state=/run/sixgate-siit-demo.forwarding

case "${1:-}" in
up)
  if [ ! -e "$state" ]; then
    echo "$(sysctl -n net.ipv4.ip_forward) $(sysctl -n net.ipv6.conf.all.forwarding)" >"$state"
  fi
  ip netns add sg-demo-h6
  ip netns add sg-demo-h4
  ip -n sg-demo-h6 link set lo up
  ip -n sg-demo-h4 link set lo up
  ip link add sgdemo6 type veth peer name eth0 netns sg-demo-h6
  ip link add sgdemo4 type veth peer name eth0 netns sg-demo-h4
  ip link set sgdemo6 up
  ip link set sgdemo4 up
  ip -n sg-demo-h6 link set eth0 up
  ip -n sg-demo-h4 link set eth0 up
  ip -6 addr add 2001:db8:6::1/64 dev sgdemo6 nodad
  ip addr add 198.51.100.1/24 dev sgdemo4
  ip -n sg-demo-h6 -6 addr add 2001:db8:6::2/64 dev eth0 nodad
  ip -n sg-demo-h6 -6 route add default via 2001:db8:6::1
  ip -n sg-demo-h4 addr add 198.51.100.2/24 dev eth0
  ip -n sg-demo-h4 route add default via 198.51.100.1
  sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  echo "up: sg-demo-h6 (2001:db8:6::2) and sg-demo-h4 (198.51.100.2); forwarding on"
  ;;
down)
  ip netns del sg-demo-h6 2>/dev/null || true
  ip netns del sg-demo-h4 2>/dev/null || true
  if [ -e "$state" ]; then
    read -r v4 v6 <"$state"
    sysctl -qw "net.ipv4.ip_forward=$v4" "net.ipv6.conf.all.forwarding=$v6"
    rm -f "$state"
  fi
  echo "down"
  ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac
