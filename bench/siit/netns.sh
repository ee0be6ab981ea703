#!/usr/bin/env bash
# The two hosts of deploy/examples/siit.toml, as network namespaces beside
# the translator:
#
#   sg-demo-h6  2001:db8:6::2/64 --- (2001:db8:6::1) translator (198.51.100.1) --- 198.51.100.2/24  sg-demo-h4
#
#   bench/siit/netns.sh up [GW_NETNS]     create them, turn on IP forwarding in the translator
#   bench/siit/netns.sh down [GW_NETNS]   remove them (and put forwarding back as it was)
#
# Without GW_NETNS the translator is this machine itself (its forwarding
# sysctls are changed, and restored by `down`). With GW_NETNS, the translator
# is that namespace (created here), and this machine is left alone:
#
#   bench/siit/netns.sh up sg-demo-gw
#   ip netns exec sg-demo-gw sixgate run --config deploy/examples/siit.toml &
#   ip netns exec sg-demo-h6 ping 2001:db8:46::2     # h4, through the translator
#   ip netns exec sg-demo-h4 ping 192.0.2.6          # h6, through the translator
set -euo pipefail

gw="${2:-}"
at_gw=()
[ -n "$gw" ] && at_gw=(ip netns exec "$gw")
state="/run/sixgate-siit-demo${gw:+-$gw}.forwarding"

case "${1:-}" in
up)
  if [ -n "$gw" ]; then
    ip netns add "$gw"
    ip -n "$gw" link set lo up
  elif [ ! -e "$state" ]; then
    echo "$(sysctl -n net.ipv4.ip_forward) $(sysctl -n net.ipv6.conf.all.forwarding)" >"$state"
  fi
  for h in h6 h4; do
    ip netns add "sg-demo-$h"
    ip -n "sg-demo-$h" link set lo up
    ip link add "sgdemo-$h" ${gw:+netns "$gw"} type veth peer name eth0 netns "sg-demo-$h"
    "${at_gw[@]}" ip link set "sgdemo-$h" up
    ip -n "sg-demo-$h" link set eth0 up
  done
  "${at_gw[@]}" ip -6 addr add 2001:db8:6::1/64 dev sgdemo-h6 nodad
  "${at_gw[@]}" ip addr add 198.51.100.1/24 dev sgdemo-h4
  ip -n sg-demo-h6 -6 addr add 2001:db8:6::2/64 dev eth0 nodad
  ip -n sg-demo-h6 -6 route add default via 2001:db8:6::1
  ip -n sg-demo-h4 addr add 198.51.100.2/24 dev eth0
  ip -n sg-demo-h4 route add default via 198.51.100.1
  "${at_gw[@]}" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  echo "up: sg-demo-h6 (2001:db8:6::2) and sg-demo-h4 (198.51.100.2); forwarding on in ${gw:-this machine}"
  ;;
down)
  ip netns del sg-demo-h6 2>/dev/null || true
  ip netns del sg-demo-h4 2>/dev/null || true
  if [ -n "$gw" ]; then
    ip netns del "$gw" 2>/dev/null || true
  elif [ -e "$state" ]; then
    read -r v4 v6 <"$state"
    sysctl -qw "net.ipv4.ip_forward=$v4" "net.ipv6.conf.all.forwarding=$v6"
    rm -f "$state"
  fi
  echo "down"
  ;;
*)
  echo "usage: $0 up|down [GW_NETNS]" >&2
  exit 2
  ;;
esac
