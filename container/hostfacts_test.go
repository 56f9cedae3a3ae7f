package container

import (
	"strings"
	"testing"
)

// The real node's mountinfo is read for the longest mount point holding a
// path, with the optional fields that say how it propagates.
func TestMountOfPicksTheLongestMountPoint(t *testing.T) {
	const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /var/lib rw,relatime shared:9 master:2 - ext4 /dev/sdb1 rw
31 22 0:26 / /var/lib/kubelet/pods rw,relatime - tmpfs tmpfs rw
32 22 0:27 / /var/library rw,relatime master:5 - tmpfs tmpfs rw
`
	cases := []struct{ path, mountpoint, optional string }{
		{"/etc/hosts", "/", "shared:1"},
		{"/var/lib/netshim", "/var/lib", "shared:9 master:2"},
		{"/var/lib", "/var/lib", "shared:9 master:2"},
		{"/var/lib/kubelet/pods/x/volumes", "/var/lib/kubelet/pods", ""},
		{"/var/library/x", "/var/library", "master:5"},
	}
	for _, c := range cases {
		mp, opt, err := mountOf(strings.NewReader(mountinfo), c.path)
		if err != nil || mp != c.mountpoint || opt != c.optional {
			t.Errorf("mountOf(%s) = %q, %q, %v; want %q, %q", c.path, mp, opt, err, c.mountpoint, c.optional)
		}
	}
	if _, _, err := mountOf(strings.NewReader(""), "/x"); err == nil {
		t.Error("no mounts at all: want an error")
	}
}
