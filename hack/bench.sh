#!/usr/bin/env bash
# Benchmarks netshim with cribench. It starts netshim on temp dirs with its
# own bridge (nsbench0) and subnet (198.19.250.0/24, inside 198.18.0.0/15),
# runs the phases, and removes everything it made, also when it fails.
#
# The headline config is the usual one (examples/cni/10-netshim.conflist's
# shape: bridge with ipMasq and hairpin, host-local, portmap); the second is
# the same with ipMasq off.
#
#   hack/bench.sh [cribench args]             netshim alone (usual config),
#                                             then the floor of that config
#   hack/bench.sh --compare [cribench args]   netshim and the containerd anchor
#                                             (hack/anchor-containerd.sh): for
#                                             each config, runs ordered netshim,
#                                             anchor, anchor, netshim, then each
#                                             figure for both and the ratio; the
#                                             floor and kubelet's view (usual
#                                             config only)
#   hack/bench.sh --kubelet                   only kubelet's view, netshim and
#                                             the anchor, usual config
#   hack/bench.sh --node [cribench args]      a full node (cribench --node: 110
#                                             pods of 2 containers), netshim
#                                             then the anchor, usual config,
#                                             then both side by side
#
# The anchor is containerd 2.x built from the Go module proxy
# (hack/anchor-containerd.sh), with netshim's runc and CNI plugins.
#
# Before the cribench args: --kubelet-pods N (pods per kubelet session,
# default 5), --kubelet-feature-gates G (kubelet's feature gates in its
# view, e.g. EventedPLEG=true), --no-kubelet (skip kubelet's view),
# --no-second (skip the ipMasq:false config).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=alone kubelet_pods=5 kubelet_gates="" with_kubelet=true with_second=true
while [ $# -gt 0 ]; do
	case "$1" in
	--compare) mode=compare ;;
	--kubelet) mode=kubelet ;;
	--node) mode=node ;;
	--kubelet-pods) kubelet_pods=$2; shift ;;
	--kubelet-feature-gates) kubelet_gates=$2; shift ;;
	--no-kubelet) with_kubelet=false ;;
	--no-second) with_second=false ;;
	*) break ;;
	esac
	shift
done
work=$(mktemp -d /tmp/netshim-bench.XXXXXX)
bridge=nsbench0
floor_bridge=nsfbr0
pid=""
anchor=false

stop_netshim() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"; wait "$pid" 2>/dev/null || true
	fi
	pid=""
	ip link del "$bridge" 2>/dev/null || true
}

cleanup() {
	stop_netshim
	ip link del "$floor_bridge" 2>/dev/null || true
	if $anchor; then hack/anchor-containerd.sh stop; fi
	rm -rf "$work"
}
trap cleanup EXIT

# conflist NAME BRIDGE SUBNET IPAM_DIR IPMASQ: the usual config's shape.
conflist() {
	cat <<CONF
{"cniVersion":"1.0.0","name":"$1","plugins":[
 {"type":"bridge","bridge":"$2","isGateway":true,"ipMasq":$5,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$4","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"$3"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
CONF
}

# start_netshim IPMASQ: a fresh netshim on dirs of its own for that config.
start_netshim() {
	local dir=$work/netshim-ipmasq-$1
	mkdir -p "$dir/conf"
	conflist bench "$bridge" 198.19.250.0/24 "$dir/ipam" "$1" > "$dir/conf/10-bench.conflist"
	"$root/bin/netshim" --config= --container-runtime-endpoint "unix://$dir/netshim.sock" \
		--root-dir "$dir/root" --state-dir "$dir/run" --netns-dir "$dir/netns" \
		--cni-conf-dir "$dir/conf" --cni-bin-dir "$root/bin" --cni-cache-dir "$dir/cache" \
		> "$dir/netshim.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ -S "$dir/netshim.sock" ] && break; sleep 0.05; done
	[ -S "$dir/netshim.sock" ] || { echo "bench: netshim did not start; its log:" >&2; cat "$dir/netshim.log" >&2; exit 1; }
	netshim_dir=$dir
}

# start_anchor IPMASQ: a fresh containerd anchor with that config.
start_anchor() {
	hack/anchor-containerd.sh stop
	anchor=true
	anchor_sock=$(ANCHOR_IPMASQ=$1 hack/anchor-containerd.sh start | tail -1)
	anchor_pid=$(cat /run/netshim-anchor/containerd.pid)
}

run_netshim() {
	echo "== netshim"
	"$root/bin/cribench" --endpoint "unix://$netshim_dir/netshim.sock" --runtime-pid "$pid" \
		--per-pod-processes pause --per-container-processes conmon --ipam-dir "$netshim_dir/ipam" \
		--bridge "$bridge" --netns-dir "$netshim_dir/netns" "$@"
}

run_anchor() {
	echo "== containerd $("$root/bin/containerd" --version | awk '{print $3}') (anchor)"
	# A runc shim per pod: the anchor's per-pod memory counts shims and pause.
	"$root/bin/cribench" --endpoint "$anchor_sock" --runtime-pid "$anchor_pid" \
		--per-pod-processes pause,containerd-shim --containerd-hosts-dir /var/lib/netshim-anchor/certs.d \
		--ipam-dir /var/lib/netshim-anchor/ipam --bridge nsanchor0 --netns-dir /run/netns \
		--process-marker /run/netshim-anchor/containerd.sock "$@"
}

# floor JSON: the raw steps of the usual config, timed alone, on a bridge
# and subnet of their own.
floor() {
	echo "== the floor: each raw step alone, and the usual config's ADD and DEL"
	conflist floor "$floor_bridge" 198.19.251.0/24 "$work/floor-ipam" true > "$work/floor.conflist"
	"$root/bin/cribench" --floor -n 20 --runc "$root/bin/runc" --pause-binary "$root/bin/pause" \
		--cni-bin-dir "$root/bin" --cni-conf "$work/floor.conflist" --json "$1"
	ip link del "$floor_bridge" 2>/dev/null || true
}

kubelet_view() {
	if [ ! -x "$root/bin/kubelet" ]; then
		echo "== kubelet's view skipped: bin/kubelet is missing (make bin/kubelet builds it)"
		return
	fi
	echo "== kubelet's view: a standalone kubelet on each runtime, usual config; feature gates: ${kubelet_gates:-none}"
	go build -o "$work/podstart" ./test/kubelet/podstart
	"$work/podstart" --kubelet "$root/bin/kubelet" --netshim "unix://$netshim_dir/netshim.sock" \
		--anchor "$anchor_sock" --anchor-hosts-dir /var/lib/netshim-anchor/certs.d -n "$kubelet_pods" \
		--feature-gates "$kubelet_gates"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"

case $mode in
alone)
	start_netshim true
	run_netshim --registry "$@"
	floor "$work/floor.json"
	exit 0
	;;
kubelet)
	start_netshim true
	start_anchor true
	kubelet_view
	exit 0
	;;
node)
	# One runtime at a time, each alone on the machine: the figures are
	# its idle CPU and memory.
	start_netshim true
	echo "== netshim: a full node"
	"$root/bin/cribench" --node --endpoint "unix://$netshim_dir/netshim.sock" --runtime-pid "$pid" \
		--monitor-processes conmon --json "$work/node-netshim.json" "$@"
	stop_netshim
	start_anchor true
	echo "== containerd $("$root/bin/containerd" --version | awk '{print $3}') (anchor): a full node"
	"$root/bin/cribench" --node --endpoint "$anchor_sock" --runtime-pid "$anchor_pid" \
		--monitor-processes containerd-shim --containerd-hosts-dir /var/lib/netshim-anchor/certs.d \
		--process-marker /run/netshim-anchor/containerd.sock --json "$work/node-anchor.json" "$@"
	echo "== a full node side by side (usual config)"
	"$root/bin/cribench" --compare-node "$work/node-netshim.json,$work/node-anchor.json"
	exit 0
	;;
esac

# compare: the usual config first (the headline), then ipMasq off. In the
# usual config the floor is taken right after each netshim run.
compare_config() {
	local masq=$1; shift
	start_netshim "$masq"
	start_anchor "$masq"
	run_netshim --json "$work/n1-$masq.json" "$@"
	if [ "$masq" = true ]; then floor "$work/floor1.json"; fi
	run_anchor --json "$work/a1-$masq.json" "$@"
	run_anchor --json "$work/a2-$masq.json" "$@"
	run_netshim --json "$work/n2-$masq.json" "$@"
	if [ "$masq" = true ]; then floor "$work/floor2.json"; fi
}

echo "######## usual config: ipMasq true, hairpin, portmap (the headline)"
compare_config true --registry "$@"
if $with_kubelet; then kubelet_view; fi
summary_true="$work/summary-true.txt"
"$root/bin/cribench" --compare-netshim "$work/n1-true.json,$work/n2-true.json" \
	--compare-anchor "$work/a1-true.json,$work/a2-true.json" \
	--compare-floor "$work/floor1.json,$work/floor2.json" > "$summary_true"
stop_netshim

if $with_second; then
	echo "######## second config: the same with ipMasq false"
	compare_config false "$@"
	stop_netshim
fi

echo "== side by side, usual config (each the mean of two runs; the floor taken after each netshim run)"
cat "$summary_true"
if $with_second; then
	echo "== side by side, ipMasq false (each the mean of two runs)"
	"$root/bin/cribench" --compare-netshim "$work/n1-false.json,$work/n2-false.json" \
		--compare-anchor "$work/a1-false.json,$work/a2-false.json"
fi
