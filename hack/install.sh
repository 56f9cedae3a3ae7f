#!/usr/bin/env bash
# `make install` and `make uninstall`: netshim on a node, in the layout of
# containerd and CRI-O, recorded in a manifest so that uninstall removes
# exactly what install added and puts back what it replaced.
#
#   $PREFIX/bin/netshim
#   $PREFIX/libexec/netshim/pause, runc     netshim's own; its defaults find them
#   $UNITDIR/netshim.service                /usr/local in it replaced by $PREFIX
#   $SYSCONFDIR/netshim/netshim.toml        only if there is none (examples/netshim.toml)
#   $CNI_BIN_DIR/<plugin>                   each unless a newer one is there
#   $CNI_CONF_DIR/10-netshim.conflist       only if the dir holds no network config
#   $SYSCONFDIR/crictl.yaml                 only if there is none
#   $PREFIX/share/netshim/install-manifest  what this install wrote
#
# Usage: hack/install.sh install|uninstall, with the variables above (and
# DESTDIR, BIN, CNI_PLUGINS) from the environment; the Makefile sets them.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PREFIX:=/usr/local}"
: "${DESTDIR:=}"
: "${BIN:=$(pwd)/bin}"
: "${SYSCONFDIR:=/etc}"
: "${CNI_BIN_DIR:=/opt/cni/bin}"
: "${CNI_CONF_DIR:=$SYSCONFDIR/cni/net.d}"
: "${UNITDIR:=$PREFIX/lib/systemd/system}"
: "${CNI_PLUGINS:=bridge host-local loopback portmap bandwidth}"

share=$PREFIX/share/netshim
manifest=$share/install-manifest
backups=$share/replaced

# The manifest has one line per thing install did, paths without DESTDIR:
#   dir - PATH           a dir install created (removed at uninstall if empty)
#   file SHA256 PATH     a file install wrote
#   replaced SHA256 PATH a file install wrote over an older one, kept in $backups
# A file whose content changed since (an edited config, a plugin someone
# upgraded) no longer matches its SHA256 and is left in place.

say() { echo "netshim $action: $*"; }
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

# mkdirs PATH: create PATH and its missing parents, recording each it created.
mkdirs() {
	local sofar="" part parts
	IFS=/ read -ra parts <<<"${1#/}"
	for part in "${parts[@]}"; do
		sofar=$sofar/$part
		if [ ! -d "$DESTDIR$sofar" ]; then
			mkdir -m 0755 "$DESTDIR$sofar"
			record dir - "$sofar"
		fi
	done
}

# record KIND HASH PATH: add a line to the new manifest, once per path.
record() {
	forget "$3"
	echo "$1 $2 $3" >>"$new_manifest"
}

# forget PATH: drop PATH's line from the new manifest.
forget() {
	local rest
	rest=$(awk -v p="$1" '$3 != p' "$new_manifest")
	printf '%s\n' "$rest" | sed '/^$/d' >"$new_manifest"
}

# forget_old PATH: this install found PATH is no longer netshim's; the
# earlier manifest's line for it is not carried over.
forget_old() {
	echo "$1" >>"$disowned"
	rm -f "$DESTDIR$backups$1"
}

# recorded PATH: whether the new manifest has a line for PATH.
recorded() {
	awk -v p="$1" '$3 == p { found = 1 } END { exit !found }' "$new_manifest"
}

# old_entry PATH: the earlier install's manifest line for PATH, if any.
old_entry() {
	[ -f "$DESTDIR$manifest" ] || return 0
	awk -v p="$1" '$3 == p { print; exit }' "$DESTDIR$manifest"
}

# put SRC DST MODE: write DST atomically (a rename, so a running netshim or
# runc keeps its old binary and nothing sees half a file).
put() {
	local src=$1 dst=$2 mode=$3
	mkdirs "$(dirname "$dst")"
	install -m "$mode" "$src" "$DESTDIR$dst.netshim-new"
	mv -f "$DESTDIR$dst.netshim-new" "$DESTDIR$dst"
}

# own SRC DST MODE: netshim's own file; an install always writes it.
own() {
	put "$1" "$2" "$3"
	record file "$(hash_of "$DESTDIR$2")" "$2"
	say "installed $2"
}

# plugin NAME: a CNI plugin, unless a newer one that is not netshim's is
# there. One an earlier install wrote is netshim's while its content is what
# that install recorded; changed since (someone upgraded it), it is not.
plugin() {
	local src=$BIN/$1 dst=$CNI_BIN_DIR/$1 old kind sum
	old=$(old_entry "$dst")
	kind=${old%% *}
	sum=$(echo "$old" | cut -d' ' -f2)
	if [ ! -e "$DESTDIR$dst" ] && [ -L "$DESTDIR$dst" ]; then
		say "kept $dst: a dangling symlink, not netshim's" # someone's; leave it
	elif [ ! -e "$DESTDIR$dst" ]; then
		put "$src" "$dst" 0755
		record "${kind:-file}" "$(hash_of "$DESTDIR$dst")" "$dst"
		say "installed $dst"
	elif [ -n "$old" ] && [ "$(hash_of "$DESTDIR$dst")" = "$sum" ]; then
		put "$src" "$dst" 0755
		record "$kind" "$(hash_of "$DESTDIR$dst")" "$dst"
		say "installed $dst"
	elif [ "$src" -nt "$DESTDIR$dst" ]; then
		mkdirs "$(dirname "$backups$dst")"
		rm -f "$DESTDIR$backups$dst"
		cp -a "$DESTDIR$dst" "$DESTDIR$backups$dst"
		put "$src" "$dst" 0755
		record replaced "$(hash_of "$DESTDIR$dst")" "$dst"
		say "installed $dst over an older one, kept in $backups$dst for uninstall"
	else
		forget_old "$dst"
		say "kept $dst: it is not older than netshim's"
	fi
}

# config SRC DST: a config file, written only where none is; one an earlier
# install wrote stays as it is (it may have been edited) and stays recorded.
config() {
	local src=$1 dst=$2 old
	old=$(old_entry "$dst")
	if [ -n "$old" ] && [ -e "$DESTDIR$dst" ]; then
		forget "$dst"
		echo "$old" >>"$new_manifest"
		say "kept $dst from the earlier install"
		return
	fi
	put "$src" "$dst" 0644
	record file "$(hash_of "$DESTDIR$dst")" "$dst"
	say "installed $dst"
}

has_cni_conf() {
	local f
	for f in "$DESTDIR$CNI_CONF_DIR"/*.conf "$DESTDIR$CNI_CONF_DIR"/*.conflist "$DESTDIR$CNI_CONF_DIR"/*.json; do
		[ -e "$f" ] && return 0
	done
	return 1
}

systemd_running() {
	[ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

do_install() {
	for f in netshim pause runc $CNI_PLUGINS; do
		[ -x "$BIN/$f" ] || { echo "install: $BIN/$f is missing; run make build tools" >&2; exit 1; }
	done
	[ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
	new_manifest=$(mktemp)
	disowned=$(mktemp)
	trap 'rm -f "$new_manifest" "$disowned"' EXIT
	# The manifest's own dir first, so uninstall removes it last.
	mkdirs "$share"

	own "$BIN/netshim" "$PREFIX/bin/netshim" 0755
	own "$BIN/pause" "$PREFIX/libexec/netshim/pause" 0755
	own "$BIN/runc" "$PREFIX/libexec/netshim/runc" 0755

	local unit
	unit=$(mktemp)
	sed -e "s|/usr/local/|$PREFIX/|g" -e "s|--config=/etc/|--config=$SYSCONFDIR/|" contrib/systemd/netshim.service >"$unit"
	own "$unit" "$UNITDIR/netshim.service" 0644
	rm -f "$unit"

	for p in $CNI_PLUGINS; do
		plugin "$p"
	done

	if [ -n "$(old_entry "$CNI_CONF_DIR/10-netshim.conflist")" ] || ! has_cni_conf; then
		config examples/cni/10-netshim.conflist "$CNI_CONF_DIR/10-netshim.conflist"
	else
		say "kept $CNI_CONF_DIR: it holds a network config already"
	fi

	# Every key at its default, but the runtime and pause of this install:
	# beside netshim, a bin dir may hold another runc.
	local conf=$SYSCONFDIR/netshim/netshim.toml
	if [ -n "$(old_entry "$conf")" ] || [ ! -e "$DESTDIR$conf" ]; then
		local toml
		toml=$(mktemp)
		sed -e "s|^oci_runtime = \"\"|oci_runtime = \"$PREFIX/libexec/netshim/runc\"|" \
			-e "s|^pause_binary = \"\"|pause_binary = \"$PREFIX/libexec/netshim/pause\"|" examples/netshim.toml >"$toml"
		config "$toml" "$conf"
		rm -f "$toml"
	else
		say "kept $conf: there is one already"
	fi

	if [ -n "$(old_entry "$SYSCONFDIR/crictl.yaml")" ] || [ ! -e "$DESTDIR$SYSCONFDIR/crictl.yaml" ]; then
		local crictl
		crictl=$(mktemp)
		printf 'runtime-endpoint: unix:///run/netshim/netshim.sock\nimage-endpoint: unix:///run/netshim/netshim.sock\ntimeout: 4\n' >"$crictl"
		config "$crictl" "$SYSCONFDIR/crictl.yaml"
		rm -f "$crictl"
	else
		say "kept $SYSCONFDIR/crictl.yaml: there is one already"
	fi

	# What an earlier install recorded and this one did not write stays
	# recorded, so uninstall still removes it.
	if [ -f "$DESTDIR$manifest" ]; then
		while read -r kind sum path; do
			recorded "$path" || grep -qxF "$path" "$disowned" || echo "$kind $sum $path" >>"$new_manifest"
		done <"$DESTDIR$manifest"
	fi
	install -m 0644 "$new_manifest" "$DESTDIR$manifest"
	say "recorded in $manifest"

	if systemd_running; then
		systemctl daemon-reload
		say "next: systemctl enable --now netshim (or systemctl restart netshim to upgrade; pods keep running)"
	fi
}

do_uninstall() {
	if [ ! -f "$DESTDIR$manifest" ]; then
		say "no $DESTDIR$manifest: nothing was installed there"
		return
	fi
	if systemd_running; then
		# Stops netshim only: the unit's KillMode=process leaves pods running.
		systemctl disable --now netshim.service >/dev/null 2>&1 || true
	fi
	local kind sum path dirs=()
	while read -r kind sum path; do
		case $kind in
		file | replaced)
			if [ ! -e "$DESTDIR$path" ]; then
				:
			elif [ "$(hash_of "$DESTDIR$path")" != "$sum" ]; then
				say "kept $path: it changed since install"
				[ "$kind" = file ] || rm -f "$DESTDIR$backups$path"
				continue
			else
				rm -f "$DESTDIR$path"
				say "removed $path"
			fi
			if [ "$kind" = replaced ] && [ -e "$DESTDIR$backups$path" ]; then
				mv -f "$DESTDIR$backups$path" "$DESTDIR$path"
				say "restored the $path it replaced"
			fi
			;;
		dir) dirs+=("$path") ;;
		esac
	done <"$DESTDIR$manifest"
	rm -f "$DESTDIR$manifest"
	# Deepest first, so a dir is empty by the time its turn comes.
	if [ ${#dirs[@]} -gt 0 ]; then
		printf '%s\n' "${dirs[@]}" | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2- |
			while read -r path; do
				rmdir "$DESTDIR$path" 2>/dev/null || true
			done
	fi
	if systemd_running; then
		systemctl daemon-reload
	fi
	say "done"
}

action=${1:-}
case $action in
install) do_install ;;
uninstall) do_uninstall ;;
*)
	echo "usage: $0 install|uninstall" >&2
	exit 2
	;;
esac
