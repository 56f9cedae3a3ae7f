package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mkspecial makes a FIFO or a char device like /dev/zero (1:5) at path.
func mkspecial(t *testing.T, path, kind string) {
	t.Helper()
	_ = os.Remove(path)
	var err error
	switch kind {
	case "fifo":
		err = unix.Mkfifo(path, 0o644)
	case "zero":
		if os.Geteuid() != 0 {
			if os.Getenv("CI") == "true" {
				t.Fatal("needs root to make a char device")
			}
			t.Skip("needs root to make a char device")
		}
		err = unix.Mknod(path, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5)))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// buildBounded is BuildSpec that fails the test, instead of hanging it, if
// the build never returns.
func buildBounded(t *testing.T, in SpecInput) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := BuildSpec(in)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatal("BuildSpec never returned: it blocked on a file")
		return nil
	}
}

// An image's /etc/passwd or /etc/group that is a FIFO or a char device
// (issue 23, fault 2) made CreateContainer hang holding the pod's lock, or
// read until netshim was OOM-killed. Only a regular file of bounded size is
// read; anything else refuses the container, naming the image.
func TestHostileImageUserFilesAreRefused(t *testing.T) {
	for _, file := range []string{"etc/passwd", "etc/group"} {
		for _, kind := range []string{"fifo", "zero", "huge"} {
			t.Run(file+"/"+kind, func(t *testing.T) {
				in := specInput(t)
				in.Image.User = "app"
				p := filepath.Join(in.Rootfs, file)
				if kind == "huge" {
					line := "x:x:1:1::/:/bin/sh\n"
					if err := os.WriteFile(p, []byte(strings.Repeat(line, (4<<20)/len(line)+2)), 0o644); err != nil {
						t.Fatal(err)
					}
				} else {
					mkspecial(t, p, kind)
				}
				err := buildBounded(t, in)
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "config.image") || !strings.Contains(err.Error(), "/"+file) {
					t.Fatalf("got %v, want InvalidArgument on config.image naming /%s", err, file)
				}
			})
		}
	}
}

// A link in the image is resolved inside the rootfs, never on the host:
// /etc/passwd -> /tmp/host/passwd reads the rootfs's own file.
func TestImageUserFileLinksStayInTheRootfs(t *testing.T) {
	in := specInput(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "passwd"), []byte("root:x:0:0::/:/bin/sh\nhostonly:x:4321:4321::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(in.Rootfs, "etc/passwd")
	_ = os.Remove(p)
	if err := os.Symlink(filepath.Join(host, "passwd"), p); err != nil {
		t.Fatal(err)
	}
	in.Config.Linux.SecurityContext.RunAsUsername = "hostonly"
	if err := buildBounded(t, in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a user only the host's file knows: %v, want InvalidArgument (the link must not leave the rootfs)", err)
	}
}

// A seccomp localhost profile that is a FIFO or /dev/zero is refused at
// once, naming the field, instead of hanging or eating the node's memory.
func TestHostileSeccompProfileIsRefused(t *testing.T) {
	for _, kind := range []string{"fifo", "zero"} {
		t.Run(kind, func(t *testing.T) {
			in := specInput(t)
			p := filepath.Join(t.TempDir(), "profile.json")
			mkspecial(t, p, kind)
			in.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: p}
			err := buildBounded(t, in)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "config.linux.security_context.seccomp.localhost_ref") {
				t.Fatalf("got %v, want InvalidArgument on the localhost_ref", err)
			}
		})
	}
}

// A log path that is already something other than a regular file (a FIFO
// would block conmon, a link would send the log elsewhere) is refused
// before the monitor runs, and nothing of the container is left.
func TestLogPathThatIsNoFileIsRefused(t *testing.T) {
	for _, kind := range []string{"fifo", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			m, w, cfg := newTestManager(t)
			req := request("web")
			req.LogPath = filepath.Join(t.TempDir(), "web.log")
			if kind == "fifo" {
				mkspecial(t, req.LogPath, "fifo")
			} else if err := os.Symlink("/etc/hostname", req.LogPath); err != nil {
				t.Fatal(err)
			}
			_, err := m.Create(context.Background(), req)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "config.log_path") {
				t.Fatalf("got %v, want InvalidArgument on config.log_path", err)
			}
			if len(m.List()) != 0 {
				t.Fatal("a record is left")
			}
			entries, _ := os.ReadDir(filepath.Join(cfg.RootDir, "checkpoints"))
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(entries) != 0 || len(w.mounted) != 0 || len(w.procs) != 0 {
				t.Fatalf("left behind: %d checkpoints, %d mounts, %d monitors", len(entries), len(w.mounted), len(w.procs))
			}
		})
	}
}
