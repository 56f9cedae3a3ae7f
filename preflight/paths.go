package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SocketPath is what stands at the CRI socket's path.
type SocketPath int

const (
	SocketPathFree      SocketPath = iota // nothing: netshim creates the socket
	SocketPathOwnSocket                   // a socket of netshim's user: served, or stale and replaced
	SocketPathSymlink                     // refused: following it could be turned against the node
	SocketPathNotSocket                   // refused: netshim never removes what is not a socket
	SocketPathOtherUser                   // refused: another user's socket
)

// InspectSocketPath classifies path as netshim's listen and netshim check
// both judge it; st is its Lstat, when it exists.
func InspectSocketPath(path string, euid int) (SocketPath, fs.FileInfo, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return SocketPathFree, nil, nil
	case err != nil:
		return 0, nil, err
	case st.Mode()&fs.ModeSymlink != 0:
		return SocketPathSymlink, st, nil
	case st.Mode()&fs.ModeSocket == 0:
		return SocketPathNotSocket, st, nil
	case int(st.Sys().(*syscall.Stat_t).Uid) != euid:
		return SocketPathOtherUser, st, nil
	}
	return SocketPathOwnSocket, st, nil
}

// checkSocket looks at the CRI socket's path as netshim's listen will: it
// replaces a stale socket of its own but refuses a symlink, a non-socket, or
// a socket of another user; it makes the socket mode 0660.
func checkSocket(c Config) []Result {
	r := Result{Check: "socket"}
	path, ok := strings.CutPrefix(c.Endpoint, "unix://")
	if !ok || path == "" {
		r.Severity, r.Fix = Failure, "set --container-runtime-endpoint=unix:///run/netshim/netshim.sock"
		r.Message = fmt.Sprintf("--container-runtime-endpoint %q is not unix:///path", c.Endpoint)
		return []Result{r}
	}
	rs := []Result{checkSocketDir(c, filepath.Dir(path))}
	state, st, err := InspectSocketPath(path, c.Euid)
	switch {
	case err != nil:
		r.Severity, r.Message = Failure, fmt.Sprintf("cannot inspect %s: %v", path, unwrapPathError(err))
		r.Fix = "check the permissions of " + filepath.Dir(path)
	case state == SocketPathFree:
		r.Message = path + " is free; netshim creates it with mode 0660"
	case state == SocketPathSymlink:
		r.Severity, r.Message = Failure, path+" is a symlink: netshim refuses to serve on it"
		r.Fix = "rm " + path
	case state == SocketPathNotSocket:
		r.Severity, r.Message = Failure, path+" exists and is not a socket: netshim refuses to replace it"
		r.Fix = "move " + path + " away, or set --container-runtime-endpoint to another path"
	case state == SocketPathOtherUser:
		r.Severity = Failure
		r.Message = fmt.Sprintf("%s belongs to uid %d, not to netshim's user: netshim refuses to replace it", path, st.Sys().(*syscall.Stat_t).Uid)
		r.Fix = "stop whatever serves on it and rm " + path
	case serving(path):
		r.Message = fmt.Sprintf("%s is being served (mode %04o)", path, st.Mode().Perm())
		if st.Mode().Perm()&0o007 != 0 {
			r.Severity = Warning
			r.Message = fmt.Sprintf("%s is served with mode %04o: any user of the node can run pods", path, st.Mode().Perm())
			r.Fix = "chmod 0660 " + path + " (netshim sets 0660 when it starts)"
		}
	default:
		r.Message = path + " is a stale socket; netshim replaces it at start"
	}
	rs = append(rs, r)
	if c.SocketGroup != "" {
		rs = append(rs, checkSocketGroup(c.SocketGroup))
	}
	return rs
}

// checkSocketDir: a socket dir others can write to lets them put their own
// socket where kubelet will look.
func checkSocketDir(c Config, dir string) Result {
	r := Result{Check: "socket dir"}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Message = dir + " does not exist yet; netshim creates it with mode 0700"
	case err != nil:
		r.Severity, r.Message = Failure, fmt.Sprintf("cannot inspect %s: %v", dir, unwrapPathError(err))
		r.Fix = "check the permissions of " + filepath.Dir(dir)
	case !st.IsDir():
		r.Severity, r.Message = Failure, dir+" is not a directory"
		r.Fix = "move " + dir + " away, or set --container-runtime-endpoint to another path"
	case st.Mode().Perm()&0o022 != 0 && st.Mode()&fs.ModeSticky == 0:
		r.Severity = Warning
		r.Message = fmt.Sprintf("%s has mode %04o: other users can replace the socket kubelet connects to", dir, st.Mode().Perm())
		r.Fix = "chmod 0700 " + dir
	default:
		r.Message = fmt.Sprintf("%s (mode %04o)", dir, st.Mode().Perm())
	}
	return r
}

func checkSocketGroup(group string) Result {
	r := Result{Check: "socket group"}
	if _, err := strconv.Atoi(group); err == nil {
		r.Message = "gid " + group
		return r
	}
	if g, err := user.LookupGroup(group); err != nil {
		r.Severity, r.Message = Failure, fmt.Sprintf("--socket-group %q: %v: netshim will not start", group, err)
		r.Fix = "groupadd " + group + ", or set --socket-group to an existing group"
	} else {
		r.Message = fmt.Sprintf("%s (gid %s)", group, g.Gid)
	}
	return r
}

// serving reports whether something accepts connections on the socket.
func serving(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

const (
	// minFree is below what netshim can keep writing checkpoints and bundles.
	minFree = 64 << 20
	// lowFreePercent is kubelet's default eviction threshold for the image
	// filesystem (imagefs.available<15%): below it kubelet evicts pods.
	lowFreePercent = 15
)

// checkFreeSpace reports the free space of the filesystem that holds dir
// (or will hold it: the nearest existing parent).
func checkFreeSpace(c Config, flag, dir string) Result {
	r := Result{Check: "space " + flag}
	at := dir
	for {
		if _, err := os.Stat(at); err == nil || filepath.Dir(at) == at {
			break
		}
		at = filepath.Dir(at)
	}
	avail, total, err := c.Statfs(at)
	if err != nil {
		r.Severity, r.Message = Failure, fmt.Sprintf("cannot statfs %s: %v", at, err)
		r.Fix = "check that " + at + " is mounted"
		return r
	}
	pct := 100.0
	if total > 0 {
		pct = float64(avail) * 100 / float64(total)
	}
	r.Message = fmt.Sprintf("%s: %s free of %s (%.0f%%)", dir, bytesString(avail), bytesString(total), pct)
	switch {
	case avail < minFree:
		r.Severity = Failure
		r.Message += ": too little for netshim's checkpoints and bundles"
		r.Fix = "free space on the filesystem of " + at + ", or set " + flag + " to a larger one"
	case pct < lowFreePercent:
		r.Severity = Warning
		r.Message += fmt.Sprintf(": under %d%%, kubelet evicts pods and removes images", lowFreePercent)
		r.Fix = "free space on the filesystem of " + at + ", or set " + flag + " to a larger one"
	}
	return r
}

func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
