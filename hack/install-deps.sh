#!/usr/bin/env bash
# Installs, from Debian's packages, what is missing of the groups named as
# arguments (default: all three):
#
#   node   what netshim needs at run time on a node: iptables (the bridge
#          plugin's ipMasq and portmap call it), iproute2 (`ip netns` for
#          operators), mount and util-linux (nsenter enters a pod from the
#          host; the multinode cluster's nodes mount their own /run/netns),
#          conmon (the container monitor), and the runtime handlers the
#          example config registers: runsc (gVisor) and crun.
#   build  what building netshim needs besides Go: gcc and libc6-dev (the
#          static pause program), libseccomp-dev and pkg-config (runc's
#          seccomp, through cgo).
#   test   what the tests need: docker-registry and busybox-static (the
#          loopback registry and the images built for it), systemd for
#          systemd-analyze (test/install verifies the unit with it; it needs
#          no running systemd), iputils-ping (the README pings between pods),
#          and for the Kubernetes cluster's test images (test/kube builds
#          agnhost's file system from them) curl, bind9-dnsutils (dig,
#          nslookup) and netcat-openbsd, with conntrack for kube-proxy;
#          apparmor for apparmor_parser (a unit test compiles netshim's
#          default AppArmor profile; on AppArmor nodes it is there already).
#
# `make install` asks for node and build, `make run` too, `make tools` and
# `make test` for all. runc and the CNI plugins are not installed here: the
# Makefile builds them from go.mod's tool dependencies into ./bin.
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(node build test)

need=()
for group in "${groups[@]}"; do
	case $group in
	node)
		command -v iptables >/dev/null 2>&1 || need+=(iptables)
		command -v ip >/dev/null 2>&1 || need+=(iproute2)
		command -v mount >/dev/null 2>&1 || need+=(mount)
		command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
		command -v conmon >/dev/null 2>&1 || need+=(conmon)
		[ -x /usr/bin/runsc ] || need+=(runsc)
		[ -x /usr/bin/crun ] || need+=(crun)
		;;
	build)
		if ! command -v go >/dev/null 2>&1; then
			echo "install-deps: Go is required (go.mod's go line names the version; see the README); put it on PATH and run again" >&2
			exit 1
		fi
		command -v gcc >/dev/null 2>&1 || need+=(gcc)
		[ -e "$(gcc -print-file-name=libc.a 2>/dev/null || echo /nonexistent)" ] && [ "$(gcc -print-file-name=libc.a 2>/dev/null)" != "libc.a" ] || need+=(libc6-dev)
		# runc is built with seccomp (kubelet's RuntimeDefault profile needs
		# it): cgo links libseccomp, found through pkg-config.
		pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
		command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
		;;
	test)
		command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
		command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
		[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
		[ -x /bin/busybox ] || need+=(busybox-static)
		command -v curl >/dev/null 2>&1 || need+=(curl)
		command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
		[ -x /bin/nc.openbsd ] || need+=(netcat-openbsd)
		command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
		[ -x /usr/sbin/apparmor_parser ] || [ -x /sbin/apparmor_parser ] || need+=(apparmor)
		;;
	*)
		echo "install-deps: unknown group $group: want node, build or test" >&2
		exit 2
		;;
	esac
done

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing ${need[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "install-deps: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Debian's docker-registry package starts a system registry on :5000 where
# systemd runs; the tests start their own on loopback, so that one is stopped.
if [[ " ${need[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
