package container

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// resolveUser picks the container's uid, gid and groups, as containerd does:
// run_as_user or run_as_username over the image's user, run_as_group over
// the user's primary group; the groups /etc/group lists the user in are
// added (unless the policy is Strict), then supplemental_groups. Names are
// looked up in the image's /etc/passwd and /etc/group, inside the rootfs.
func resolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (specs.User, error) {
	spec := imageUser
	// The image's user is no field of the request; the image it names is.
	field, what := "config.image", ": the image's user "
	switch {
	case sc.GetRunAsUser() != nil:
		spec, field, what = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10), "config.linux.security_context.run_as_user", ""
	case sc.GetRunAsUsername() != "":
		spec, field, what = sc.GetRunAsUsername(), "config.linux.security_context.run_as_username", ""
	}
	if sc.GetRunAsGroup() != nil {
		spec, _, _ = strings.Cut(spec, ":")
		spec += ":" + strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	passwdData, err := readInRootfs(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	groupData, err := readInRootfs(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}
	passwd := func() io.Reader { return bytes.NewReader(passwdData) }
	group := func() io.Reader { return bytes.NewReader(groupData) }
	eu, err := user.GetExecUser(spec, &user.ExecUser{}, passwd(), group())
	if err != nil {
		return specs.User{}, invalid(field, "%s%q: %v", what, spec, err)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	seen := map[uint32]bool{u.GID: true}
	add := func(g uint32) {
		if !seen[g] {
			seen[g] = true
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		// The user's groups in /etc/group, also when the primary group was
		// given (GetExecUser lists them only when it was not).
		sgids := eu.Sgids
		if name, _, hasGroup := strings.Cut(spec, ":"); hasGroup {
			if byName, err := user.GetExecUser(name, &user.ExecUser{}, passwd(), group()); err == nil {
				sgids = byName.Sgids
			}
		}
		for _, g := range sgids {
			add(uint32(g))
		}
	}
	if len(sc.GetSupplementalGroups()) > 0 {
		names := make([]string, 0, len(sc.GetSupplementalGroups()))
		for _, g := range sc.GetSupplementalGroups() {
			names = append(names, strconv.FormatInt(g, 10))
		}
		gids, err := user.GetAdditionalGroups(names, group())
		if err != nil {
			return specs.User{}, invalid("config.linux.security_context.supplemental_groups", ": %v", err)
		}
		for _, g := range gids {
			add(uint32(g))
		}
	}
	return u, nil
}

// readInRootfs reads a file of the image's rootfs on the host's side, so
// it never follows a link out of the rootfs (links resolve inside it, as
// the container would see them, and the last element is opened without
// following one). A missing file reads empty, as for an image without one;
// one that is not a regular file, or is too big, refuses the container:
// a FIFO would block CreateContainer and /dev/zero would never end. The
// container has not run yet, so nothing changes the rootfs meanwhile.
func readInRootfs(rootfs, name string) ([]byte, error) {
	if rootfs == "" {
		return nil, nil
	}
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, invalid("config.image", ": the image's %s: %v", name, err)
	}
	data, err := readRegular(p, maxUserFileSize, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, invalid("config.image", ": the image's %s cannot be read: %v", name, err)
	}
	return data, nil
}
