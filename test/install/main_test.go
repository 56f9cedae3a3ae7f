// Package install tests what a node operator gets: `make install` and
// `make uninstall` into a temp DESTDIR, the systemd unit (systemd-analyze
// verify), netshim's readiness notification on a fake NOTIFY_SOCKET, and
// `netshim check` against a fake node. Nothing here touches the real /etc,
// /opt/cni/bin or /usr/local.
package install

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var (
	repoRoot string
	binDir   string
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "../.."))
	binDir = filepath.Join(repoRoot, "bin")
	os.Exit(m.Run())
}

// needRoot skips a test that needs root, except under CI=true, where it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI=true")
	}
	t.Skip("needs root")
}

// needBinary fails the test when bin/NAME is missing: `make install-test`
// builds it first.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(binDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run make build tools (make install-test does): %v", p, err)
	}
	return p
}

// makeTarget runs `make TARGET VAR=value...` in the repository and returns
// its output.
func makeTarget(t *testing.T, target string, vars ...string) string {
	t.Helper()
	args := append([]string{"-C", repoRoot, "--no-print-directory", target}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s %s: %v\n%s", target, strings.Join(vars, " "), err, out)
	}
	return string(out)
}

// entry is one thing in a tree: a dir, a file (content hash, mode, mtime)
// or a symlink.
type entry string

// snapshot records every path under root, so a test can tell that a tree
// is exactly as it was.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	s := map[string]entry{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			s["/"+rel] = entry(fmt.Sprintf("dir %v", info.Mode()))
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			s["/"+rel] = entry("symlink " + target)
		default:
			s["/"+rel] = entry(fmt.Sprintf("file %s %v %d", fileHash(t, path), info.Mode(), info.ModTime().UnixNano()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// files lists the regular files and symlinks of a snapshot, sorted.
func files(s map[string]entry) []string {
	var out []string
	for p, e := range s {
		if !strings.HasPrefix(string(e), "dir ") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// diff describes how two snapshots differ, or "" when they are the same.
func diff(before, after map[string]entry) string {
	var lines []string
	for p, e := range before {
		if a, ok := after[p]; !ok {
			lines = append(lines, "gone: "+p)
		} else if a != e {
			lines = append(lines, fmt.Sprintf("changed: %s (%s → %s)", p, e, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "left: "+p)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
