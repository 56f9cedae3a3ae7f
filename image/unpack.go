package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// usage is what an unpacked layer holds.
type usage struct {
	Bytes  uint64 `json:"bytes"`
	Inodes uint64 `json:"inodes"`
}

// unpack writes the tar stream r into dir as an overlay lower layer: OCI
// whiteouts become overlay's (a 0/0 character device for a removed file,
// trusted.overlay.opaque=y for an opaque dir); owners, modes, times, xattrs,
// hard links, symlinks and devices are kept. No entry can write outside dir:
// names with "..", and hard links whose target is outside, are refused, and
// no symlink is followed out of dir.
func unpack(r io.Reader, dir string) (usage, error) {
	var u usage
	tr := tar.NewReader(r)
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirTimes []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return u, fmt.Errorf("read layer: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return u, err
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				dirTimes = append(dirTimes, dirTime{dir, hdr.ModTime})
			}
			continue
		}
		parentRel, base := path.Split(name)
		parent, err := securejoin.SecureJoin(dir, parentRel)
		if err != nil {
			return u, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return u, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if !within(dir, parent) {
			return u, fmt.Errorf("layer entry %q would be written outside its layer", hdr.Name)
		}
		target := filepath.Join(parent, base)

		if base == opaqueWhiteout {
			if err := unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return u, fmt.Errorf("mark %q opaque: %w", parentRel, err)
			}
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			gone := filepath.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
			_ = os.RemoveAll(gone)
			if err := unix.Mknod(gone, unix.S_IFCHR, 0); err != nil {
				return u, fmt.Errorf("whiteout %q: %w", hdr.Name, err)
			}
			u.Inodes++
			continue
		}
		// A later entry replaces an earlier one, except a dir over a dir.
		if st, err := os.Lstat(target); err == nil && !(st.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(target); err != nil {
				return u, fmt.Errorf("replace %q: %w", hdr.Name, err)
			}
		}
		if err := writeEntry(tr, hdr, dir, target); err != nil {
			return u, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeLink {
			// A hard link is another name for an inode already written:
			// its header's owner and mode must not overwrite the inode's.
			continue
		}
		u.Inodes++
		u.Bytes += uint64(max(hdr.Size, 0))
		if hdr.Typeflag != tar.TypeSymlink {
			if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
				return u, fmt.Errorf("chown %q: %w", hdr.Name, err)
			}
		} else {
			_ = os.Lchown(target, hdr.Uid, hdr.Gid)
		}
		for key, value := range hdr.PAXRecords {
			if attr, ok := strings.CutPrefix(key, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(target, attr, []byte(value), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
					return u, fmt.Errorf("xattr %s of %q: %w", attr, hdr.Name, err)
				}
			}
		}
		if hdr.Typeflag != tar.TypeSymlink {
			// chown clears set-id bits: the mode goes on after it.
			if err := os.Chmod(target, hdr.FileInfo().Mode()); err != nil {
				return u, fmt.Errorf("chmod %q: %w", hdr.Name, err)
			}
		}
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{target, hdr.ModTime})
		} else {
			ts := []unix.Timespec{unix.NsecToTimespec(hdr.AccessTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
			if hdr.AccessTime.IsZero() {
				ts[0] = ts[1]
			}
			_ = unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	// Dir times last: writing into a dir changes its mtime.
	for i := len(dirTimes) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(dirTimes[i].mtime.UnixNano())
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dirTimes[i].path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return u, nil
}

// entryName cleans a tar entry's name to a path relative to the layer;
// leading "/" and "./" are dropped (as containerd does), ".." is refused.
func entryName(raw string) (string, error) {
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", fmt.Errorf("layer entry %q would be written outside its layer", raw)
		}
	}
	name := path.Clean("/" + raw)
	if name == "/" {
		return ".", nil
	}
	return strings.TrimPrefix(name, "/"), nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func writeEntry(tr *tar.Reader, hdr *tar.Header, root, target string) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	case tar.TypeReg: // archive/tar reads the old TypeRegA ('\x00') as TypeReg
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		// The target is resolved inside the container's rootfs, never here.
		return os.Symlink(hdr.Linkname, target)
	case tar.TypeLink:
		linkName, err := entryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link to %q: outside its layer", hdr.Linkname)
		}
		src, err := securejoin.SecureJoin(root, linkName)
		if err != nil || !within(root, src) {
			return fmt.Errorf("hard link to %q: outside its layer", hdr.Linkname)
		}
		return os.Link(src, target)
	case tar.TypeChar:
		return unix.Mknod(target, unix.S_IFCHR|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeBlock:
		return unix.Mknod(target, unix.S_IFBLK|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeFifo:
		return unix.Mkfifo(target, mode)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	return nil
}
