# netshim — `make run` and `make test` are the two commands a fresh machine needs.
GO      ?= go
BIN     := $(CURDIR)/bin
TOOLS   := github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/main/loopback \
	github.com/containernetworking/plugins/plugins/meta/portmap \
	github.com/containernetworking/plugins/plugins/meta/bandwidth
GOFILES := $(shell find . -name '*.go' -not -path './bin/*') go.mod go.sum
# netshim --version; GOFLAGS may turn off Go's own VCS stamp.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

# make install: the layout of containerd and CRI-O (see hack/install.sh).
PREFIX       ?= /usr/local
DESTDIR      ?=
SYSCONFDIR   ?= /etc
CNI_BIN_DIR  ?= /opt/cni/bin
CNI_CONF_DIR ?= $(SYSCONFDIR)/cni/net.d
UNITDIR      ?= $(PREFIX)/lib/systemd/system
INSTALL_ENV   = PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' BIN='$(BIN)' SYSCONFDIR='$(SYSCONFDIR)' \
	CNI_BIN_DIR='$(CNI_BIN_DIR)' CNI_CONF_DIR='$(CNI_CONF_DIR)' UNITDIR='$(UNITDIR)' \
	CNI_PLUGINS='$(notdir $(filter github.com/containernetworking/%,$(TOOLS)))'

.PHONY: all deps tools build install uninstall install-test run test unit lint e2e multinode vet fuzz fuzz-smoke bench bench-compare bench-kubelet bench-node critest kubelet-e2e cluster-up cluster-down kube-build kube-up kube-down kube-e2e kube-test clean

# Fuzz targets: package and name. `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := ./pkg/checkpoint:FuzzDecode ./network/cni:FuzzLoadFile ./pkg/validate:FuzzValidateSandboxConfig
FUZZTIME     ?= 60s

all: build

# Debian packages by group (hack/install-deps.sh): node (run time), build
# (gcc, libseccomp-dev, ...), test. `make install` and `make run` take node
# and build (they compile; a test package never lands on a node), the rest
# all three; DEPS='node' installs one group.
DEPS ?= node build test
deps:
	hack/install-deps.sh $(DEPS)

# runc and the CNI reference plugins, built from go.mod's tool dependencies.
# runc with seccomp (cgo and libseccomp), as distributions build it.
tools: deps
	$(GO) build -o $(BIN)/ $(TOOLS)
	CGO_ENABLED=1 $(GO) build -tags seccomp -o $(BIN)/runc github.com/opencontainers/runc

build: $(BIN)/netshim $(BIN)/pause $(BIN)/cribench $(BIN)/netshim-cluster $(BIN)/netshim-kube

$(BIN)/netshim: $(GOFILES)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $@ ./cmd/netshim

$(BIN)/cribench: $(GOFILES)
	$(GO) build -o $@ ./cmd/cribench

$(BIN)/netshim-cluster: $(GOFILES)
	$(GO) build -o $@ ./cmd/netshim-cluster

$(BIN)/netshim-kube: $(GOFILES)
	$(GO) build -o $@ ./cmd/netshim-kube

# Static, so the shared sandbox rootfs needs nothing but this one file.
$(BIN)/pause: sandbox/pause/pause.c
	@mkdir -p $(BIN)
	gcc -Os -static -s -Wall -Wextra -o $@ $<

# ARGS are more netshim flags (hack/run.sh passes them on; a later flag
# overrides an earlier one): make run ARGS='-v 2 --metrics-address=127.0.0.1:9753'
run: DEPS = node build
run: tools build
	hack/run.sh $(ARGS)

# netshim, pause, runc, the CNI plugins, an example network, /etc/crictl.yaml
# and the systemd unit onto this node (DESTDIR for a staging root); what it
# wrote goes in $(PREFIX)/share/netshim/install-manifest.
install: DEPS = node build
install: tools build
	$(INSTALL_ENV) hack/install.sh install

# Removes what install wrote (and nothing else), puts back what it replaced.
uninstall:
	$(INSTALL_ENV) hack/install.sh uninstall

vet:
	$(GO) vet ./...

# staticcheck, pinned by hack/tools (a module of its own, so the linter's
# dependencies stay out of netshim's go.mod).
$(BIN)/staticcheck: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

# Every package, tests and the e2e suites included; findings are fixed,
# not silenced.
lint: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

# Unit tests, under the race detector. They need no root: the few that
# must be root (runc and conmon in oci, unpacking as owners in image, a
# tmpfs in atomicfile) skip without it, except under CI=true, where they
# fail instead, so a CI run never passes by skipping.
unit:
	$(GO) test -race ./pkg/... ./network/... ./sandbox/... ./oci/... ./container/... ./image/... ./cri/... ./cmd/... ./preflight/...

# make install/uninstall into a temp DESTDIR, the unit through
# systemd-analyze verify, READY=1 on a fake NOTIFY_SOCKET, netshim check.
install-test: tools build
	$(GO) test -count=1 -v -timeout 10m ./test/install/...

# End-to-end: the real binary, runc, CNI plugins and namespaces. Needs root.
e2e: tools build
	$(GO) test -count=1 -v -timeout 20m ./test/e2e/...

# Several nodes on one machine, each a netns + mount ns with its own netshim,
# joined by host-gw routes or VXLAN: the network model across nodes. Needs root.
multinode: tools build
	$(GO) test -count=1 -v -timeout 10m ./test/multinode/...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; \
	done

# A few thousand inputs of each fuzz target, so they keep compiling and
# running. A count, not a duration: Go 1.26's fuzz coordinator can fail a
# duration run at its deadline with a bare "context deadline exceeded" on a
# loaded machine (go.dev/issue/75804, fixed in Go 1.27).
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

test: tools build vet lint unit fuzz-smoke install-test e2e multinode kubelet-e2e kube-test

# Kubernetes v1.34 (kubelet, the control plane, kube-proxy, kubectl, agnhost),
# etcd, flanneld and CoreDNS from the Go module proxy, each pinned by a build
# module of its own under test/kube, so their dependencies stay out of
# netshim's go.mod (hack/kube-build.sh).
KUBE_MODS := $(wildcard test/kube/build/go.* test/kube/flannel/go.* test/kube/coredns/go.*)

$(BIN)/kubelet: $(KUBE_MODS)
	hack/kube-build.sh $(BIN) cluster

kube-build: tools build $(BIN)/kubelet

$(BIN)/e2e.test: $(KUBE_MODS)
	hack/kube-build.sh $(BIN) e2e

# A 3-node cluster (control plane, and on each node kubelet, netshim, flanneld
# and kube-proxy; CoreDNS as pods) on this machine; its last line is
# `export KUBECONFIG=...`. KUBE_ARGS go to netshim-kube up (--backend host-gw).
KUBE_DIR ?= /var/lib/netshim-kube
kube-up: kube-build
	$(BIN)/netshim-kube up --dir $(KUBE_DIR) $(KUBE_ARGS)

kube-down:
	@if [ -x $(BIN)/netshim-kube ]; then $(BIN)/netshim-kube down --dir $(KUBE_DIR); fi

# Kubernetes' own e2e suite against the cluster kube-up made: sig-network's
# Conformance specs and the NodeConformance specs, serially
# (E2E_ARGS go to netshim-kube e2e: --focus, --skip, --report).
kube-e2e: kube-build $(BIN)/e2e.test
	$(BIN)/netshim-kube e2e --dir $(KUBE_DIR) $(E2E_ARGS)

# The cluster smoke test: kube-up, Services, DNS, pods across nodes without
# NAT, hostPort and NodePort from another node, nothing left; then kube-down.
kube-test: kube-build
	$(GO) test -count=1 -v -timeout 30m ./test/kube/...

# A real kubelet, standalone, on a netshim of its own: a static pod's life. Needs root.
kubelet-e2e: tools build $(BIN)/kubelet
	$(GO) test -count=1 -v -timeout 10m ./test/kubelet/...

# The CRI conformance suite, whole, against a netshim of its own; writes
# docs/conformance.md. Needs root and critest on PATH (cri-tools v1.36).
critest: tools build
	$(GO) run ./test/critest $(CRITEST_ARGS)

# netshim alone, through the CRI load generator; BENCH_ARGS go to cribench.
bench: tools build
	hack/bench.sh $(BENCH_ARGS)

# The anchor the benchmarks compare with: containerd 2.x, its runc shim and
# ctr, built from the Go module proxy (test/bench/containerd pins the version).
$(BIN)/containerd: test/bench/containerd/go.mod test/bench/containerd/go.sum
	hack/anchor-containerd.sh build

# kubelet's view alone: manifest written -> pod Ready, on netshim and on the
# containerd anchor, alternated in one run (test/kubelet/podstart), with
# evented PLEG on both (KUBELET_GATES go to kubelet). Needs root.
KUBELET_GATES ?= EventedPLEG=true
bench-kubelet: tools build $(BIN)/kubelet $(BIN)/containerd
	hack/bench.sh --kubelet --kubelet-feature-gates "$(KUBELET_GATES)" $(KUBELET_BENCH_ARGS)

# netshim and containerd 2.x (built into bin/ if missing), alternated in one run.
bench-compare: tools build $(BIN)/kubelet $(BIN)/containerd
	hack/bench.sh --compare $(BENCH_ARGS)

# A full node: 110 pods of 2 containers on netshim, then on containerd 2.x;
# each call kubelet makes every second, CPU and memory at rest, pod start at
# 110 pods against 1. NODE_ARGS go to cribench --node.
bench-node: tools build $(BIN)/containerd
	hack/bench.sh --node $(NODE_ARGS)

# The multinode suite's cluster, left up for a person: CLUSTER_ARGS go to
# netshim-cluster up (--nodes, --backend host-gw|vxlan, --network-plugin cni|kubenet).
cluster-up: tools build
	hack/cluster.sh up $(CLUSTER_ARGS)

cluster-down:
	hack/cluster.sh down

clean:
	rm -rf $(BIN)
