#!/usr/bin/env bash
# The anycast lab: real BGP on one machine, in network namespaces this script creates.
#
#   client ── router (AS 64500, ECMP over both paths, L4 hashing) ─┬─ popa (AS 64501): bird + popdns + popdns health
#                                                                   ├─ popb (AS 64501): bird + popdns + popdns health
#                                                                   └─ primary: popdns, the hidden primary (not announced)
#
# Both PoPs serve a copy of zones/ (in $LAB_DIR/POP/zones, so a test can change one PoP's) on the anycast addresses 198.51.100.53 (in 198.51.100.0/24) and
# 2001:db8:53::53 (in 2001:db8:53::/48), each with its own identity, so `dig CHAOS TXT id.server`
# tells which one answered. Both also follow the zone fleet.lab. as secondaries of the hidden primary
# (10.53.3.2, zone file $LAB_DIR/primary/zones/fleet.lab.zone): NOTIFY + IXFR, signed with a TSIG key
# made by `popdns tsig-keygen` at `up`.
#
#   deploy/lab/lab.sh up                 build it (needs root, iproute2, bird2; node and a built dist/)
#   deploy/lab/lab.sh test               run the failover scenarios (deploy/lab/labtest.mjs) and print the numbers
#   deploy/lab/lab.sh down               stop everything it started (by PID) and delete its namespaces
#   deploy/lab/lab.sh dns-stop POP [SIG] stop popdns on popa/popb (default SIGTERM = drain)
#   deploy/lab/lab.sh dns-start POP      start popdns on popa/popb again
#   deploy/lab/lab.sh dns-reload POP     SIGHUP popdns on popa/popb/primary (re-read its zones, $LAB_DIR/POP/zones)
#   deploy/lab/lab.sh fleet-set SERIAL TEXT  rewrite fleet.lab. at the primary (v.fleet.lab. TXT TEXT); then dns-reload primary
#   deploy/lab/lab.sh exec NS CMD...     run a command in a lab namespace (client, router, popa, popb, primary)
#
# Everything it starts it records in $LAB_DIR (default /tmp/popdns-lab) and stops by PID; it deletes
# only the namespaces it recorded creating. Every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB_DIR=${LAB_DIR:-/tmp/popdns-lab}
NS_PREFIX=${LAB_NS_PREFIX:-popdnslab}
NODE=${NODE:-$(command -v node)}
POPDNS="$ROOT/dist/cli.js"
NAMES=(client router popa popb primary)
KEY=lab-xfr

ns() { echo "${NS_PREFIX}-$1"; }
log() { echo "lab: $*" >&2; }
die() { log "error: $*"; exit 1; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

require() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  for t in ip bird birdc "$NODE"; do command -v "$t" >/dev/null || die "$t not installed (apt-get install iproute2 bird2)"; done
  [ -f "$POPDNS" ] || die "$POPDNS missing: run npm run build first"
}

# start NAME NS CMD...: background process in a namespace, PID recorded (ip netns exec execs the command).
start() {
  local name=$1 n=$2; shift 2
  ip netns exec "$(ns "$n")" "$@" >"$LAB_DIR/log/$name.log" 2>&1 &
  echo $! >"$LAB_DIR/pids/$name.pid"
}

stop_pid() {
  local name=$1 sig=${2:-TERM} f="$LAB_DIR/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -s "$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -s KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

veth() { # veth A_NS A_IF A_V4 A_V6 B_NS B_IF B_V4 B_V6
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$6" netns "$(ns "$5")"
  in_ns "$1" ip addr add "$3" dev "$2"
  in_ns "$1" ip -6 addr add "$4" dev "$2" nodad
  in_ns "$1" ip link set "$2" up
  in_ns "$5" ip addr add "$7" dev "$6"
  in_ns "$5" ip -6 addr add "$8" dev "$6" nodad
  in_ns "$5" ip link set "$6" up
}

router_conf() {
  cat <<EOF
router id 10.53.0.1;
protocol device {}
protocol kernel kernel4 { ipv4 { import none; export all; }; merge paths yes; }
protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths yes; }
template bgp pop {
  local as 64500;
  hold time 9; keepalive time 3; connect retry time 1; connect delay time 1; error wait time 1, 10;
}
protocol bgp popa4 from pop { neighbor 10.53.1.2 as 64501; ipv4 { import all; export none; }; }
protocol bgp popb4 from pop { neighbor 10.53.2.2 as 64501; ipv4 { import all; export none; }; }
protocol bgp popa6 from pop { neighbor fd53:1::2 as 64501; ipv6 { import all; export none; }; }
protocol bgp popb6 from pop { neighbor fd53:2::2 as 64501; ipv6 { import all; export none; }; }
EOF
}

# The PoP side follows deploy/bird/bird.conf: one static protocol per prefix, switched by popdns health,
# with its state in an include file; only the anycast prefixes are exported.
pop_conf() { # POP N
  cat <<EOF
router id 10.53.$2.2;
include "$LAB_DIR/$1/anycast.conf";
define ANYCAST4 = 198.51.100.0/24;
define ANYCAST6 = 2001:db8:53::/48;
protocol device {}
protocol static anycast4 { disabled ANYCAST4_DISABLED; ipv4; route ANYCAST4 blackhole; }
protocol static anycast6 { disabled ANYCAST6_DISABLED; ipv6; route ANYCAST6 blackhole; }
filter export_anycast { if net = ANYCAST4 || net = ANYCAST6 then accept; reject; }
template bgp upstream {
  local as 64501;
  hold time 9; keepalive time 3; connect retry time 1; connect delay time 1; error wait time 1, 10;
  graceful restart aware;
}
protocol bgp router4 from upstream { neighbor 10.53.$2.1 as 64500; ipv4 { import none; export filter export_anycast; }; }
protocol bgp router6 from upstream { neighbor fd53:$2::1 as 64500; ipv6 { import none; export filter export_anycast; }; }
EOF
}

# The lab zone the hidden primary serves; `lab.sh test` changes the TXT at v.fleet.lab. and the serial.
fleet_zone() { # SERIAL TEXT
  cat <<EOF
\$ORIGIN fleet.lab.
\$TTL 60
@ SOA ns1 hostmaster $1 3600 600 86400 60
@ NS ns1
ns1 A 10.53.3.2
v TXT "$2"
EOF
  # Filler, so a one-record change is a small part of the zone and goes out as a real IXFR (popdns
  # sends the whole zone when a change touches more than half of it).
  for i in $(seq 1 40); do echo "h$i A 192.0.2.$i"; done
}

# The hidden primary: transfers to the PoPs (signed), NOTIFY to each PoP's unicast address.
primary_conf() {
  cat <<EOF
zones: $LAB_DIR/primary/zones
data-dir: $LAB_DIR/primary/data
listen: [10.53.3.2:53, 127.0.0.1:53]
identity: primary.lab
metrics: 127.0.0.1:9153
control: false
workers: 1
drain: 0s
$(cat "$LAB_DIR/tsig.yaml")
transfer:
  allow: [{ from: 10.53.0.0/16, key: $KEY }]
  notify:
    - { to: "10.53.1.2:53", key: $KEY }
    - { to: "10.53.2.2:53", key: $KEY }
EOF
}

popdns_conf() { # POP N
  cat <<EOF
zones: $LAB_DIR/$1/zones
data-dir: $LAB_DIR/$1/data
listen: [198.51.100.53:53, "[2001:db8:53::53]:53", 10.53.$2.2:53, 127.0.0.1:53]
identity: $1.lab
metrics: 127.0.0.1:9153
control: false
workers: 1
drain: 5s
$(cat "$LAB_DIR/tsig.yaml")
secondaries:
  - { zone: fleet.lab, primaries: ["10.53.3.2:53"], key: $KEY }
health:
  interval: 1s
  timeout: 500ms
  rise: 2
  fall: 3
  max-serial-lag: 2s
  maintenance-file: $LAB_DIR/$1/maintenance
  bird-socket: $LAB_DIR/$1/bird.ctl
  state-file: $LAB_DIR/$1/anycast.conf
  metrics: 127.0.0.1:9154
  prefixes:
    - { prefix: 198.51.100.0/24, protocol: anycast4 }
    - { prefix: "2001:db8:53::/48", protocol: anycast6 }
EOF
}

dns_start() {
  local pop=$1
  start "$pop-popdns" "$pop" "$NODE" "$POPDNS" serve --config "$LAB_DIR/$pop/popdns.yaml"
  # Bounded by the clock, not by a count of polls (a loaded machine makes each poll slower).
  local deadline=$((SECONDS + 45))
  while [ "$SECONDS" -lt "$deadline" ]; do
    grep -q 'ready:' "$LAB_DIR/log/$pop-popdns.log" 2>/dev/null && return 0
    sleep 0.1
  done
  die "popdns on $pop not ready after 45 s: $(tail -5 "$LAB_DIR/log/$pop-popdns.log")"
}

up() {
  require
  [ -e "$LAB_DIR/namespaces" ] && die "a lab is already up in $LAB_DIR (run: $0 down)"
  mkdir -p "$LAB_DIR/pids" "$LAB_DIR/log"
  : >"$LAB_DIR/namespaces"
  for n in "${NAMES[@]}"; do
    ip netns list | grep -qw "$(ns "$n")" && die "namespace $(ns "$n") exists but is not this lab's"
    ip netns add "$(ns "$n")"
    echo "$(ns "$n")" >>"$LAB_DIR/namespaces"
    in_ns "$n" ip link set lo up
  done
  veth client eth0 10.53.0.2/24 fd53::2/64 router c0 10.53.0.1/24 fd53::1/64
  veth router a0 10.53.1.1/24 fd53:1::1/64 popa eth0 10.53.1.2/24 fd53:1::2/64
  veth router b0 10.53.2.1/24 fd53:2::1/64 popb eth0 10.53.2.2/24 fd53:2::2/64
  veth router p0 10.53.3.1/24 fd53:3::1/64 primary eth0 10.53.3.2/24 fd53:3::2/64
  in_ns client ip route add default via 10.53.0.1
  in_ns client ip -6 route add default via fd53::1
  in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  # ECMP hashing on the 5-tuple, so different client source ports reach different PoPs.
  in_ns router sysctl -qw net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
  router_conf >"$LAB_DIR/router.conf"
  start router-bird router bird -f -c "$LAB_DIR/router.conf" -s "$LAB_DIR/router.ctl" -P "$LAB_DIR/router.bird.pid"
  # The hidden primary first, so the PoPs find the lab zone at their first refresh.
  "$NODE" "$POPDNS" tsig-keygen "$KEY" | sed -n '/^tsig-keys:/,/^$/p' >"$LAB_DIR/tsig.yaml"
  grep -q "$KEY:" "$LAB_DIR/tsig.yaml" || die "popdns tsig-keygen printed no key"
  in_ns primary ip route add default via 10.53.3.1
  in_ns primary ip -6 route add default via fd53:3::1
  mkdir -p "$LAB_DIR/primary/zones"
  fleet_zone 1 v1 >"$LAB_DIR/primary/zones/fleet.lab.zone"
  primary_conf >"$LAB_DIR/primary/popdns.yaml"
  dns_start primary
  local i=1
  for pop in popa popb; do
    mkdir -p "$LAB_DIR/$pop/zones"
    cp "$ROOT"/zones/*.yaml "$ROOT"/zones/*.zone "$LAB_DIR/$pop/zones/"
    in_ns "$pop" ip addr add 198.51.100.53/32 dev lo
    in_ns "$pop" ip -6 addr add 2001:db8:53::53/128 dev lo nodad
    in_ns "$pop" ip route add default via "10.53.$i.1"
    in_ns "$pop" ip -6 route add default via "fd53:$i::1"
    # Boot state: withdrawn until popdns health has seen the server healthy.
    printf 'define ANYCAST4_DISABLED = 1;\ndefine ANYCAST6_DISABLED = 1;\n' >"$LAB_DIR/$pop/anycast.conf"
    pop_conf "$pop" "$i" >"$LAB_DIR/$pop/bird.conf"
    popdns_conf "$pop" "$i" >"$LAB_DIR/$pop/popdns.yaml"
    start "$pop-bird" "$pop" bird -f -c "$LAB_DIR/$pop/bird.conf" -s "$LAB_DIR/$pop/bird.ctl" -P "$LAB_DIR/$pop/bird.pid"
    dns_start "$pop"
    start "$pop-health" "$pop" "$NODE" "$POPDNS" health --config "$LAB_DIR/$pop/popdns.yaml"
    i=$((i + 1))
  done
  # Up = the router has both PoPs as next hops for both prefixes.
  for _ in $(seq 1 300); do
    local v4 v6
    v4=$(in_ns router ip route show 198.51.100.0/24 | grep -c nexthop || true)
    v6=$(in_ns router ip -6 route show 2001:db8:53::/48 | grep -c nexthop || true)
    if [ "$v4" = 2 ] && [ "$v6" = 2 ]; then log "up: router has 2 paths to 198.51.100.0/24 and 2001:db8:53::/48"; return 0; fi
    sleep 0.1
  done
  log "router routes: $(in_ns router ip route; in_ns router ip -6 route)"
  for f in "$LAB_DIR"/log/*.log; do log "--- $f"; tail -5 "$f" >&2; done
  die "the router did not get both paths within 30 s"
}

down() {
  if [ -d "$LAB_DIR/pids" ]; then
    for f in "$LAB_DIR"/pids/*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)"; done
  fi
  if [ -f "$LAB_DIR/namespaces" ]; then
    while read -r n; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null || true; done <"$LAB_DIR/namespaces"
  fi
  rm -rf "$LAB_DIR"
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  test) LAB_DIR="$LAB_DIR" "$NODE" "$ROOT/deploy/lab/labtest.mjs" ;;
  dns-stop) stop_pid "$2-popdns" "${3:-TERM}" ;;
  dns-start) dns_start "$2" ;;
  fleet-set) fleet_zone "$2" "$3" >"$LAB_DIR/primary/fleet.lab.zone.tmp" && mv "$LAB_DIR/primary/fleet.lab.zone.tmp" "$LAB_DIR/primary/zones/fleet.lab.zone" ;;
  dns-reload) kill -s HUP "$(cat "$LAB_DIR/pids/$2-popdns.pid")" ;;
  exec) n=$2; shift 2; in_ns "$n" "$@" ;;
  *) echo "usage: $0 up|test|down|dns-stop POP [SIG]|dns-start POP|dns-reload POP|fleet-set SERIAL TEXT|exec NS CMD..." >&2; exit 2 ;;
esac
