#!/usr/bin/env bash
# kubelet's view of a pod start, side by side: a standalone kubelet on a
# netshim of its own and on the containerd anchor (hack/anchor-containerd.sh),
# alternated netshim, anchor, anchor, netshim (test/kubelet BenchmarkPodStart).
# The anchor is stopped and its state removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'hack/anchor-containerd.sh stop' EXIT
endpoint=$(hack/anchor-containerd.sh start | tail -1)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
ANCHOR_ENDPOINT=$endpoint go test -count=1 -run '^$' -bench PodStart -benchtime 1x -timeout 20m ./test/kubelet/ "$@"
