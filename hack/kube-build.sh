#!/usr/bin/env bash
# Builds the Kubernetes v1.34 binaries the cluster and its e2e run need, from
# the Go module proxy, in test/kube/build (a module of its own). Each binary
# reports the version it was built from (kubectl version, the Node's
# kubeletVersion, e2e.test's skew checks), not v0.0.0-master.
#
# Usage: kube-build.sh BIN_DIR [cluster|e2e|all]
#   cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
#            kube-proxy, kubelet, kubectl, agnhost, nnp (nonewprivs' program);
#            flanneld and coredns
#            (test/kube/flannel and test/kube/coredns, modules of their own)
#   e2e:     e2e.test
# Go's build cache makes a second run cheap; a binary newer than the build
# module's go.sum is not rebuilt.
set -euo pipefail
bin=${1:?usage: kube-build.sh BIN_DIR [cluster|e2e|all]}
what=${2:-cluster}
mod=$(cd "$(dirname "$0")/../test/kube/build" && pwd)
mkdir -p "$bin"

kver=$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
major=${kver#v}; major=${major%%.*}
minor=${kver#v*.}; minor=${minor%%.*}
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X '$pkg.gitVersion=$kver' -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$minor'"
	ldflags+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=1970-01-01T00:00:00Z'"
done
ldflags+=" -s -w"

fresh() { [ -x "$bin/$1" ] && [ "$bin/$1" -nt "$mod/go.sum" ]; }

build() { # name package
	fresh "$1" && return 0
	echo "kube-build: $1 ($kver)"
	(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$1" "$2")
}

# build_in MODULE_DIR NAME PACKAGE VERSION_VAR [CGO]: a program of another
# module (flanneld's udp backend is cgo, as upstream builds it).
build_in() {
	local dir=$mod/../$1
	[ -x "$bin/$2" ] && [ "$bin/$2" -nt "$dir/go.sum" ] && return 0
	local ver
	ver=$(cd "$dir" && go list -m -f '{{.Version}}' "$3")
	echo "kube-build: $2 ($ver)"
	(cd "$dir" && CGO_ENABLED=${5:-0} go build -trimpath -ldflags "-s -w -X '$4=$ver'" -o "$bin/$2" "$3")
}

if [ "$what" = cluster ] || [ "$what" = all ]; then
	build etcd ./cmd/etcd
	build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
	build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
	build kube-proxy k8s.io/kubernetes/cmd/kube-proxy
	build kubelet k8s.io/kubernetes/cmd/kubelet
	build kubectl k8s.io/kubernetes/cmd/kubectl
	build agnhost k8s.io/kubernetes/test/images/agnhost
	build nnp k8s.io/kubernetes/test/images/nonewprivs
	build_in flannel flanneld github.com/flannel-io/flannel github.com/flannel-io/flannel/pkg/version.Version 1
	build_in coredns coredns github.com/coredns/coredns github.com/coredns/coredns/coremain.GitCommit
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
	if ! fresh e2e.test; then
		echo "kube-build: e2e.test ($kver)"
		(cd "$mod" && CGO_ENABLED=0 go test -c -trimpath -ldflags "$ldflags" -o "$bin/e2e.test" k8s.io/kubernetes/test/e2e)
	fi
fi
