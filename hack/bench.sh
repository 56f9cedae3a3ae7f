#!/usr/bin/env bash
# Benchmarks netshim alone with cribench: starts it on temp dirs with its own
# bridge (nsbench0) and subnet (198.19.250.0/24, inside 198.18.0.0/15), runs
# the phases, and removes everything it made, also when it fails.
# Extra arguments go to cribench (e.g. -n 10 -scale 50).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/netshim-bench.XXXXXX)
bridge=nsbench0
pid=""

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"; wait "$pid" 2>/dev/null || true
	fi
	ip link del "$bridge" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/conf"
cat > "$work/conf/10-bench.conflist" <<CONF
{"cniVersion":"1.0.0","name":"bench","plugins":[
 {"type":"bridge","bridge":"$bridge","isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","dataDir":"$work/ipam","ranges":[[{"subnet":"198.19.250.0/24"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
CONF

"$root/bin/netshim" --container-runtime-endpoint "unix://$work/netshim.sock" \
	--root-dir "$work/root" --state-dir "$work/run" --netns-dir "$work/netns" \
	--cni-conf-dir "$work/conf" --cni-bin-dir "$root/bin" --cni-cache-dir "$work/cache" \
	> "$work/netshim.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$work/netshim.sock" ] && break; sleep 0.05; done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
"$root/bin/cribench" --endpoint "unix://$work/netshim.sock" --runtime-pid "$pid" \
	--per-pod-processes pause --ipam-dir "$work/ipam" "$@"
