// Package registry runs Debian's docker-registry on a loopback port for
// tests and benchmarks, and fills it with images built here from Debian's
// busybox-static: no test ever pulls from the internet.
package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"
)

// Binary is Debian's registry.
const Binary = "/usr/bin/docker-registry"

// Registry is one running registry.
type Registry struct {
	Addr string // 127.0.0.1:port
	dir  string
	cmd  *exec.Cmd
	auth authn.Authenticator
}

// Options for Start.
type Options struct {
	// Username and Password turn on basic auth (htpasswd).
	Username, Password string
}

// Start runs a registry with its storage in a temp dir under dir. Stop it
// with Stop (by PID).
func Start(dir string, o Options) (*Registry, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%s missing: install Debian's docker-registry (hack/install-deps.sh does)", Binary)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, auth: authn.Anonymous}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
		return nil, err
	}
	auth := ""
	if o.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", htpasswd)
		r.auth = &authn.Basic{Username: o.Username, Password: o.Password}
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s",
		filepath.Join(dir, "storage"), r.Addr, auth)
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	r.cmd = exec.Command(Binary, "serve", confPath)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			return nil, fmt.Errorf("registry did not answer on %s: %v\n%s", r.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the registry by its PID.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Push writes img (or an index) under repo:tag and returns the reference
// by digest.
func (r *Registry) Push(repo, tag string, img v1.Image) (string, error) {
	ref, err := name.NewTag(r.Addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.auth)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return r.Addr + "/" + repo + "@" + d.String(), nil
}

// PushIndex writes an index under repo:tag.
func (r *Registry) PushIndex(repo, tag string, idx v1.ImageIndex) error {
	ref, err := name.NewTag(r.Addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return err
	}
	return remote.WriteIndex(ref, idx, remote.WithAuth(r.auth))
}

// BlobPath is where the registry keeps the blob with digest (sha256:hex) on
// disk, so a test can corrupt it.
func (r *Registry) BlobPath(digest string) string {
	hexDigest := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.dir, "storage", "docker", "registry", "v2", "blobs", "sha256", hexDigest[:2], hexDigest, "data")
}

// File is one entry of a layer built by Layer.
type File struct {
	Name     string
	Body     []byte
	Mode     int64
	Type     byte   // tar.TypeReg when 0
	Linkname string // for links
	UID, GID int
}

// Layer builds a gzip layer holding files, in order.
func Layer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: f.Name, Typeflag: typ, Mode: mode, Linkname: f.Linkname, Uid: f.UID, Gid: f.GID,
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(f.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// Applets are the busybox applets linked into /bin of the busybox image.
var Applets = []string{"sh", "ls", "cat", "echo", "sleep", "top", "nc", "httpd", "wget", "id", "hostname",
	"ps", "kill", "printf", "true", "false", "test", "mkdir", "rm", "touch", "env", "grep", "head", "tail",
	"stat", "wc", "dd", "mount", "cut", "seq", "stty", "yes", "tr", "ip", "ping", "tee", "mkfifo", "chmod",
	"readlink", "ln", "date", "uname", "whoami", "awk", "sed", "find", "du", "df", "timeout", "nslookup", "sort"}

// BusyboxFiles is the rootfs of the busybox test image: Debian's static
// busybox with its applets, and /etc/passwd and /etc/group that know root,
// nobody (65534) and app (1000).
func BusyboxFiles() ([]File, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("read /bin/busybox (Debian's busybox-static): %w", err)
	}
	files := []File{
		{Name: "bin/", Type: tar.TypeDir}, {Name: "etc/", Type: tar.TypeDir}, {Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "root/", Type: tar.TypeDir, Mode: 0o700}, {Name: "home/", Type: tar.TypeDir}, {Name: "home/app/", Type: tar.TypeDir, UID: 1000, GID: 1000},
		{Name: "bin/busybox", Body: bb, Mode: 0o755},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Name: "etc/group", Body: []byte("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")},
	}
	for _, a := range Applets {
		files = append(files, File{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox"})
	}
	return files, nil
}

// Image makes an image from layers with cfg as its config.
func Image(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	return mutate.ConfigFile(img, cf)
}

// Busybox is the busybox image: sh as its command.
func Busybox() (v1.Image, error) {
	files, err := BusyboxFiles()
	if err != nil {
		return nil, err
	}
	l, err := Layer(files)
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}, l)
}

// MirrorConfig is a registries.conf that sends each of the names to this
// registry over plain HTTP.
func (r *Registry) MirrorConfig(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "[[registry]]\nprefix = %q\nlocation = %q\n\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n\n", n, n, r.Addr)
	}
	return b.String()
}
