#!/usr/bin/env bash
# Starts netshim in the foreground with the example config file (every key
# at its default, the runsc and crun handlers), the example CNI config
# shipped in the repo and the plugins built into ./bin. Ctrl-C stops it;
# pods keep running.
# Its arguments (make run ARGS=...) are more netshim flags, given last so
# that they override the ones here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sock=${NETSHIM_SOCKET:-/run/netshim/netshim.sock}
flags=(--config "$root/examples/netshim.toml" --container-runtime-endpoint "unix://$sock" --cni-conf-dir "$root/examples/cni" --cni-bin-dir "$root/bin" "$@")
# The preflight first, with the same flags: what it reports explains a pod
# that will not start. netshim starts either way (it sets the bridge sysctls
# itself).
"$root/bin/netshim" check "${flags[@]}" || echo "netshim: netshim check found the problems above; starting anyway"
echo "netshim: CRI on unix://$sock; try: crictl --runtime-endpoint unix://$sock pods"
exec "$root/bin/netshim" "${flags[@]}"
