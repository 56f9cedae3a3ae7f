// Package dirlock makes a directory one netshim's at a time: a flock on a
// lock file in it, held for the life of the process, with the holder's PID
// written in the file so that a refused instance can name it.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FileName is the lock file in each locked dir.
const FileName = "netshim.lock"

// Lock takes dir for this process (creating it), or says which process has
// it: what names the dir ("CNI cache dir") and flag the flag that sets it,
// so the refusal tells the user what to change. The lock goes with the
// process, however it ends; the caller keeps the file open until then.
func Lock(dir, what, flag string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", what, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another netshim (pid %s) uses %s %s: give each instance its own %s", string(holder), what, dir, flag)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprint(os.Getpid())), 0)
	return f, nil
}
