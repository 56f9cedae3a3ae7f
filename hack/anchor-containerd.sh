#!/usr/bin/env bash
# The anchor netshim is compared with: containerd 2.x (its CRI plugin) and
# its runc shim, built from the Go module proxy in test/bench/containerd (a
# build module of its own; the version is pinned in its go.mod) and cached in
# ./bin, wired to netshim's own runc (./bin/runc) and CNI plugins (./bin), so
# a ratio measures the runtimes alone. Nothing of Debian's containerd is used.
# The conflist has the same shape as hack/bench.sh's (the shape of
# examples/cni/10-netshim.conflist: bridge with ipMasq and hairpin,
# host-local, portmap), on its own bridge (nsanchor0) and subnet
# (198.19.249.0/24). Its sandbox image is netshim's own static pause, packed
# here as a one-layer image and imported: no registry is reached. Container
# images come from loopback registries the benchmarks start: each writes
# $ANCHOR_ROOT/certs.d/<host:port>/hosts.toml (containerd's registry
# config_path) to declare its registry plain HTTP.
#
#   hack/anchor-containerd.sh build   # build bin/containerd, its shim and ctr if stale
#   hack/anchor-containerd.sh start   # build if needed, configure, start
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

MOD=$repo/test/bench/containerd
BIN=$repo/bin

# build: containerd, its runc shim and ctr (to import the pause image), at
# the version test/bench/containerd pins; a binary newer than that module's
# go.sum is not rebuilt.
build() {
	local ver name
	ver=$(cd "$MOD" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
	for name in containerd containerd-shim-runc-v2 ctr; do
		[ -x "$BIN/$name" ] && [ "$BIN/$name" -nt "$MOD/go.sum" ] && continue
		echo "anchor: building $name $ver" >&2
		# Static, without btrfs (cgo): as containerd's own static release builds.
		(cd "$MOD" && CGO_ENABLED=0 go build -trimpath -tags no_btrfs \
			-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$ver" \
			-o "$BIN/$name" "github.com/containerd/containerd/v2/cmd/$name")
	done
}

configure() {
	mkdir -p "$ANCHOR_ROOT/net.d" "$ANCHOR_ROOT/certs.d" "$ANCHOR_RUN"
	cat > "$ANCHOR_ROOT/config.toml" <<CONF
version = 3
root = "$ANCHOR_ROOT/root"
state = "$ANCHOR_RUN/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$ANCHOR_RUN/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$ANCHOR_ROOT/certs.d"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  disable_apparmor = true
  # Root here may lack CAP_SYS_RESOURCE: keep runc from lowering oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$BIN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$BIN"]
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
	build
	configure
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "unix://$SOCK"; return
	fi
	# containerd finds its shim on PATH: ./bin first, so it is the one built here.
	PATH="$BIN:$PATH" "$BIN/containerd" --config "$ANCHOR_ROOT/config.toml" > "$ANCHOR_ROOT/containerd.log" 2>&1 &
	echo $! > "$PIDFILE"
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ -S "$SOCK" ] || { echo "anchor: containerd did not start; see $ANCHOR_ROOT/containerd.log" >&2; exit 1; }
	pause_image "$ANCHOR_ROOT/pause.tar"
	"$BIN/ctr" --address "$SOCK" -n k8s.io images import "$ANCHOR_ROOT/pause.tar" >/dev/null
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
build) build ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
