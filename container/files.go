package container

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Caps on the files netshim reads for a container: an image's /etc/passwd
// and /etc/group, and a seccomp profile. Real ones are a few KiB; a file
// past the cap is refused rather than read into memory.
const (
	maxUserFileSize = 4 << 20
	maxSeccompSize  = 4 << 20
)

// errNotRegular: the path is a FIFO, a device, a socket or a directory,
// which netshim never reads: a FIFO would block, /dev/zero never ends.
var errNotRegular = errors.New("is not a regular file")

// readRegular reads path if it is a regular file of at most limit bytes.
// It opens without blocking (O_NONBLOCK: a FIFO's open returns at once)
// and checks the opened file, not the name, so nothing swapped in between
// is read. With noFollow a link as the last element is refused too.
func readRegular(path string, limit int64, noFollow bool) ([]byte, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	if noFollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s is a link: %w", path, errNotRegular)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s (%s) %w", path, st.Mode().Type(), errNotRegular)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d netshim reads", path, st.Size(), limit)
	}
	// The size can change under us; the limit holds whatever it becomes.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past the %d bytes netshim reads", path, limit)
	}
	return data, nil
}
