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
// no symlink is followed out of dir. A hard link to a file of a lower
// layer (lower gives their dirs) copies that file up into this layer and
// links to the copy, as applying the layer on an overlay of the lower ones
// (containerd's way) does. A PAX global header is ignored, as moby does,
// and a GNU sparse file is written with its holes.
func unpack(r io.Reader, dir string, lower lowerLayers) (usage, error) {
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
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// Comments and defaults for the archive; archive/tar applies none
			// of them, and neither do moby or containerd.
			continue
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
			goneName := strings.TrimPrefix(base, whiteoutPrefix)
			if goneName == "" || goneName == "." || goneName == ".." {
				// ".wh.." or ".wh..." would white out the dir itself or its parent.
				return u, fmt.Errorf("whiteout %q names no file", hdr.Name)
			}
			gone := filepath.Join(parent, goneName)
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
		if hdr.Typeflag == tar.TypeLink {
			copied, err := copyUpLinkTarget(hdr.Linkname, dir, lower)
			if err != nil {
				return u, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
			}
			u.Bytes += copied.Bytes
			u.Inodes += copied.Inodes
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
	case tar.TypeGNUSparse:
		// archive/tar reads the holes as zeros; they are holes again here.
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		err = copySparse(f, tr, hdr.Size)
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

// copySparse writes r to f, seeking over blocks of zeros, and sizes f.
func copySparse(f *os.File, r io.Reader, size int64) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if allZero(buf[:n]) {
				if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return f.Truncate(size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lowerLayers gives the unpacked dirs of the layers below the one being
// unpacked, top first, once they are all there; nil for none.
type lowerLayers func() ([]string, error)

// copyUpLinkTarget makes sure the target of a hard link is in the layer
// dir: when it is not, the file it names in the lower layers (the
// topmost that has it, unless whited out or under an opaque dir above
// it) is copied into dir, its parents too, with owners, modes, xattrs and
// times. It returns what it added.
func copyUpLinkTarget(linkname, dir string, lower lowerLayers) (usage, error) {
	var u usage
	name, err := entryName(linkname)
	if err != nil || name == "." {
		return u, fmt.Errorf("hard link to %q: outside its layer", linkname)
	}
	src, err := securejoin.SecureJoin(dir, name)
	if err != nil || !within(dir, src) {
		return u, fmt.Errorf("hard link to %q: outside its layer", linkname)
	}
	if _, err := os.Lstat(src); err == nil || lower == nil {
		return u, nil // in this layer (or nowhere: the link fails as it would)
	}
	lowers, err := lower()
	if err != nil {
		return u, fmt.Errorf("hard link to %q: %w", linkname, err)
	}
	from, fromDir := findInLayers(lowers, name)
	if from == "" {
		return u, fmt.Errorf("hard link to %q: no such file in this layer or below", linkname)
	}
	// Parents first, as the lower layer has them, then the file.
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		rel := strings.Join(parts[:i], "/")
		d := filepath.Join(dir, rel)
		if _, err := os.Lstat(d); err == nil {
			continue
		}
		if err := copyNode(filepath.Join(fromDir, rel), d); err != nil {
			return u, fmt.Errorf("copy up %q: %w", rel, err)
		}
		u.Inodes++
	}
	if err := copyNode(from, filepath.Join(dir, name)); err != nil {
		return u, fmt.Errorf("copy up %q: %w", name, err)
	}
	st, _ := os.Lstat(from)
	u.Inodes++
	if st != nil {
		u.Bytes += uint64(st.Size())
	}
	return u, nil
}

// findInLayers finds name in layers (top first) as overlay would show it:
// the topmost layer that has it, unless a whiteout hides it or an opaque
// dir above it hides the layers below. It returns the path and its layer.
func findInLayers(layers []string, name string) (string, string) {
	parts := strings.Split(name, "/")
	for _, layer := range layers {
		opaque := false
		for i := 1; i <= len(parts); i++ {
			p := filepath.Join(layer, filepath.Join(parts[:i]...))
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil {
				break
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				return "", "" // whited out here
			}
			if i == len(parts) {
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					return "", "" // hard links name no dirs
				}
				return p, layer
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				break // a file where a parent dir should be: not here
			}
			buf := make([]byte, 2)
			if n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf); err == nil && string(buf[:n]) == "y" {
				opaque = true
			}
		}
		if opaque {
			return "", ""
		}
	}
	return "", ""
}

// copyNode copies one file, dir (not its contents) or symlink from src to
// dst, with owner, mode, xattrs and times.
func copyNode(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	case unix.S_IFREG:
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil //nolint:nilerr // a file system without xattrs has none to copy
	}
	names := make([]byte, size)
	size, err = unix.Llistxattr(src, names)
	if err != nil {
		return nil //nolint:nilerr // as above
	}
	for _, attr := range strings.Split(strings.TrimRight(string(names[:size]), "\x00"), "\x00") {
		vsize, err := unix.Lgetxattr(src, attr, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		vsize, err = unix.Lgetxattr(src, attr, val)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, attr, val[:vsize], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattr %s: %w", attr, err)
		}
	}
	return nil
}
