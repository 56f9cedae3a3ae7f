#!/usr/bin/env bash
# Brings the multinode suite's cluster up for a person to poke at, or takes
# it down: `hack/cluster.sh up [--nodes N] [--backend host-gw|vxlan]
# [--network-plugin cni|kubenet]`, `hack/cluster.sh down`. Its state lives in
# /run/netshim-cluster; `up` prints how to reach each node's socket.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=bin/netshim-cluster
if [[ ! -x $tool ]]; then
	echo "$tool is missing: run \`make build tools\` (make cluster-up does)" >&2
	exit 1
fi
exec "$tool" "$@"
