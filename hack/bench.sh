#!/usr/bin/env bash
# Benchmarks netshim with cribench. It starts netshim on temp dirs with its
# own bridge (nsbench0) and subnet (198.19.250.0/24, inside 198.18.0.0/15),
# runs the phases, and removes everything it made, also when it fails.
#
#   hack/bench.sh [cribench args]             netshim alone
#   hack/bench.sh --compare [cribench args]   netshim and the containerd anchor
#                                             (hack/anchor-containerd.sh), runs
#                                             ordered netshim, anchor, anchor,
#                                             netshim, then each figure for
#                                             both and the ratio
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
compare=false
if [ "${1:-}" = --compare ]; then compare=true; shift; fi
work=$(mktemp -d /tmp/netshim-bench.XXXXXX)
bridge=nsbench0
pid=""

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"; wait "$pid" 2>/dev/null || true
	fi
	ip link del "$bridge" 2>/dev/null || true
	if $compare; then hack/anchor-containerd.sh stop; fi
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

run_netshim() {
	echo "== netshim"
	"$root/bin/cribench" --endpoint "unix://$work/netshim.sock" --runtime-pid "$pid" \
		--per-pod-processes pause --per-container-processes conmon --registry --ipam-dir "$work/ipam" "$@"
}

if ! $compare; then
	run_netshim "$@"
	echo "== the floor: each raw step alone"
	"$root/bin/cribench" --floor -n 20 --runc "$root/bin/runc" --pause-binary "$root/bin/pause" --cni-bin-dir "$root/bin"
	exit 0
fi

anchor_sock=$(hack/anchor-containerd.sh start | tail -1)
anchor_pid=$(cat /run/netshim-anchor/containerd.pid)
run_anchor() {
	echo "== containerd $(containerd --version | awk '{print $3}') (anchor)"
	# A runc shim per pod: the anchor's per-pod memory counts shims and pause.
	"$root/bin/cribench" --endpoint "$anchor_sock" --runtime-pid "$anchor_pid" \
		--per-pod-processes pause,containerd-shim --registry --ipam-dir /var/lib/netshim-anchor/ipam "$@"
}
run_netshim --json "$work/n1.json" "$@"
run_anchor --json "$work/a1.json" "$@"
run_anchor --json "$work/a2.json" "$@"
run_netshim --json "$work/n2.json" "$@"
echo "== side by side (each the mean of two runs)"
"$root/bin/cribench" --compare-netshim "$work/n1.json,$work/n2.json" --compare-anchor "$work/a1.json,$work/a2.json"
