#!/usr/bin/env bash
# The anchor netshim is compared with: Debian's containerd 1.6 (built-in CRI
# plugin) with Debian's runc, wired with the same CNI plugins (./bin) and the
# same conflist shape as hack/bench.sh (the shape of
# examples/cni/10-netshim.conflist: bridge with ipMasq and hairpin, host-local,
# portmap), on its own bridge (nsanchor0) and subnet (198.19.249.0/24). Its
# sandbox image is netshim's own static pause, packed here as a one-layer
# image and imported: no registry is reached. Container images come from
# loopback registries the benchmarks start: each writes
# $ANCHOR_ROOT/certs.d/<host:port>/hosts.toml (containerd's registry
# config_path) to declare its registry plain HTTP.
#
#   hack/anchor-containerd.sh start   # install if missing, configure, start
#   hack/anchor-containerd.sh stop    # stop it (by PID) and remove its state
#   ANCHOR_IPMASQ=false hack/anchor-containerd.sh start   # the bridge without ipMasq
#
# Prints the CRI endpoint on start; the daemon's PID is in $ANCHOR_RUN/containerd.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
ANCHOR_ROOT=${ANCHOR_ROOT:-/var/lib/netshim-anchor}
ANCHOR_RUN=${ANCHOR_RUN:-/run/netshim-anchor}
SOCK=$ANCHOR_RUN/containerd.sock
PIDFILE=$ANCHOR_RUN/containerd.pid
BRIDGE=nsanchor0
SUBNET=198.19.249.0/24
IMAGE=localhost/netshim-bench/pause:1.0
IPMASQ=${ANCHOR_IPMASQ:-true}
case "$IPMASQ" in true|false) ;; *) echo "anchor: ANCHOR_IPMASQ must be true or false" >&2; exit 2 ;; esac

install() {
	local need=()
	command -v containerd >/dev/null 2>&1 || need+=(containerd)
	[ -x /usr/sbin/runc ] || need+=(runc)
	if [ ${#need[@]} -gt 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	fi
	# Debian's package enables a system containerd; the anchor runs its own.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
		echo "anchor: note: a system containerd is running too; the anchor uses its own socket and dirs" >&2
	fi
}

configure() {
	mkdir -p "$ANCHOR_ROOT/net.d" "$ANCHOR_ROOT/certs.d" "$ANCHOR_RUN"
	cat > "$ANCHOR_ROOT/config.toml" <<CONF
version = 2
root = "$ANCHOR_ROOT/root"
state = "$ANCHOR_RUN/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Root here may lack CAP_SYS_RESOURCE: keep runc from lowering oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$ANCHOR_ROOT/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$repo/bin"
    conf_dir = "$ANCHOR_ROOT/net.d"
    max_conf_num = 1
CONF
	cat > "$ANCHOR_ROOT/net.d/10-anchor.conflist" <<CONF
{"cniVersion":"1.0.0","name":"anchor","plugins":[
 {"type":"bridge","bridge":"$BRIDGE","isGateway":true,"ipMasq":$IPMASQ,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$ANCHOR_ROOT/ipam","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"$SUBNET"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
CONF
}

# pause_image OUT.tar: netshim's static pause as a one-layer docker-archive.
pause_image() {
	local out=$1 tmp layer_sum cfg_sum
	tmp=$(mktemp -d)
	mkdir -p "$tmp/rootfs"
	cp "$repo/bin/pause" "$tmp/rootfs/pause"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/rootfs" -cf "$tmp/layer.tar" .
	layer_sum=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
	mkdir "$tmp/$layer_sum" && mv "$tmp/layer.tar" "$tmp/$layer_sum/layer.tar"
	printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$layer_sum" > "$tmp/config.json"
	cfg_sum=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
	mv "$tmp/config.json" "$tmp/$cfg_sum.json"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg_sum" "$IMAGE" "$layer_sum" > "$tmp/manifest.json"
	tar -C "$tmp" -cf "$out" manifest.json "$cfg_sum.json" "$layer_sum"
	rm -rf "$tmp"
}

start() {
	install
	configure
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "unix://$SOCK"; return
	fi
	containerd --config "$ANCHOR_ROOT/config.toml" > "$ANCHOR_ROOT/containerd.log" 2>&1 &
	echo $! > "$PIDFILE"
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ -S "$SOCK" ] || { echo "anchor: containerd did not start; see $ANCHOR_ROOT/containerd.log" >&2; exit 1; }
	pause_image "$ANCHOR_ROOT/pause.tar"
	ctr --address "$SOCK" -n k8s.io images import "$ANCHOR_ROOT/pause.tar" >/dev/null
	echo "unix://$SOCK"
}

stop() {
	if [ -f "$PIDFILE" ]; then
		local pid; pid=$(cat "$PIDFILE")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
		rm -f "$PIDFILE"
	fi
	ip link del "$BRIDGE" 2>/dev/null || true
	# containerd's overlay snapshots may be mounted; unmount what lies under its root first.
	local m
	for m in $(awk -v a="$ANCHOR_ROOT/" -v b="$ANCHOR_RUN/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$ANCHOR_ROOT" "$ANCHOR_RUN"
	# Pods without a cgroup parent live under k8s.io in each hierarchy;
	# rmdir removes only what no pod uses any more.
	local d
	for d in /sys/fs/cgroup/*/k8s.io; do rmdir "$d" 2>/dev/null || true; done
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
