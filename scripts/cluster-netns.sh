#!/usr/bin/env bash
# A second "host" on this machine for trying a cluster: a network namespace with its own address,
# joined to this host by a veth pair. Needs root (or CAP_NET_ADMIN) and iproute2.
#
#   scripts/cluster-netns.sh up   [name] [subnet]   # default: volley-b 10.213.7 (.1 here, .2 there)
#   scripts/cluster-netns.sh down [name]
#
# Then bind Redis and the server to the host side (10.213.7.1) and start a worker in the namespace:
#   redis-server --bind 127.0.0.1 10.213.7.1 --protected-mode no
#   ip netns exec volley-b volley worker --cluster redis://10.213.7.1:6379 \
#     --base-url http://10.213.7.1:8000/v1 --allow-insecure-http
set -euo pipefail
action=${1:?up or down}
name=${2:-volley-b}
subnet=${3:-10.213.7}
# Interface names are at most 15 characters: derive short ones from the namespace name.
tag=$(printf '%s' "$name" | cksum | cut -c1-8)
host_if="vh$tag"
ns_if="vn$tag"

case "$action" in
  up)
    ip netns add "$name"
    ip link add "$host_if" type veth peer name "$ns_if"
    ip link set "$ns_if" netns "$name"
    ip addr add "$subnet.1/24" dev "$host_if"
    ip link set "$host_if" up
    ip netns exec "$name" ip addr add "$subnet.2/24" dev "$ns_if"
    ip netns exec "$name" ip link set "$ns_if" up
    ip netns exec "$name" ip link set lo up
    echo "namespace $name: $subnet.2 (this host: $subnet.1 on $host_if)"
    ;;
  down)
    # Deleting the namespace deletes its end of the pair, and with it the other end.
    ip netns del "$name" 2>/dev/null || true
    ip link del "$host_if" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 up|down [name] [subnet]" >&2
    exit 2
    ;;
esac
