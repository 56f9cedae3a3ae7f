package kube

import (
	"archive/tar"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/netshim/netshim/test/netcheck"
	"github.com/netshim/netshim/test/registry"
)

// registryAddr is where the cluster's registry listens, in the control
// plane's namespace; every node's netshim pulls registry.k8s.io from it.
var registryAddr = fmt.Sprintf("%s:%d", ControlPlaneIP, registryPort)

// writeRegistryConfig sends every pull of registry.k8s.io to the cluster's
// registry, with no fall-back: an image it lacks fails to pull, and nothing
// is ever fetched from the internet.
func (c *Cluster) writeRegistryConfig() error {
	conf := fmt.Sprintf("[[registry]]\nprefix = \"registry.k8s.io\"\nlocation = %q\ninsecure = true\n", registryAddr)
	return os.WriteFile(c.path("registries.conf"), []byte(conf), 0o644)
}

// startRegistry runs Debian's docker-registry in the control plane's
// namespace.
func (c *Cluster) startRegistry(ctx context.Context) error {
	storage := c.path("registry")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", storage, registryAddr)
	confPath := c.path("registry.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := c.start("registry", exec.Command("nsenter", "--net="+c.ControlPlane, "--", registry.Binary, "serve", confPath))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: c.registryTransport()}
	return waitFor(ctx, 30*time.Second, "registry", func() error {
		if !p.alive() {
			return fmt.Errorf("registry exited; its log ends:\n%s", p.logTail(20))
		}
		resp, err := client.Get("http://" + registryAddr + "/v2/")
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
}

func (c *Cluster) registryTransport() http.RoundTripper {
	return &http.Transport{DialContext: netcheck.DialerIn(c.ControlPlane)}
}

// Image is one image the cluster serves: its name as e2e.test and the
// manifests ask for it, and whether it is the real program or a stand-in.
type Image struct {
	Ref   string // registry.k8s.io/...
	Real  bool
	About string
	build func(c *Cluster) (v1.Image, error)
}

// Images are what the cluster's registry serves. agnhost and CoreDNS are
// built from their Go source; the others are stand-ins on Debian's
// busybox-static (see docs/kubernetes.md).
func Images() []Image {
	return []Image{
		{"registry.k8s.io/e2e-test-images/agnhost:2.56", true,
			"agnhost from k8s.io/kubernetes/test/images/agnhost; busybox, dash as sh, bash, curl, dig, nslookup, nc, ip, getent from Debian", agnhost},
		{"registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7", false,
			"agnhost's file system (dig, nslookup, sh) with sh as its command", dnsutils},
		{CoreDNSImage, true, "CoreDNS from github.com/coredns/coredns", coredns},
		{"registry.k8s.io/pause:3.10.1", false, "netshim's static pause program", pause},
		{"registry.k8s.io/e2e-test-images/busybox:1.37.0-1", false, "Debian's busybox-static, every applet linked", busybox},
		{"registry.k8s.io/e2e-test-images/httpd:2.4.38-4", false, "busybox httpd on port 80 serving /usr/local/apache2/htdocs", httpd},
		{"registry.k8s.io/e2e-test-images/httpd:2.4.39-4", false, "as httpd:2.4.38-4", httpd},
		{"registry.k8s.io/e2e-test-images/nginx:1.14-4", false, "busybox httpd on port 80 serving /usr/share/nginx/html", nginx},
		{"registry.k8s.io/e2e-test-images/nginx:1.15-4", false, "as nginx:1.14-4", nginx},
		{"registry.k8s.io/e2e-test-images/nonroot:1.4", false, "the busybox stand-in with user 1234, as upstream's USER 1234", nonroot},
		{"registry.k8s.io/e2e-test-images/nonewprivs:1.3", true,
			"nnp from k8s.io/kubernetes/test/images/nonewprivs, set-user-ID root, on the busybox stand-in", nonewprivs},
	}
}

// pushImages builds every image and pushes it to the cluster's registry
// under the name it is pulled by.
func (c *Cluster) pushImages(ctx context.Context, logf func(string, ...any)) error {
	for _, im := range Images() {
		img, err := im.build(c)
		if err != nil {
			return fmt.Errorf("build %s: %w", im.Ref, err)
		}
		local := strings.Replace(im.Ref, "registry.k8s.io/", registryAddr+"/", 1)
		ref, err := name.NewTag(local, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(c.registryTransport())); err != nil {
			return fmt.Errorf("push %s: %w", im.Ref, err)
		}
	}
	return nil
}

const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busyboxFiles is the tests' busybox file system with every applet Debian's
// busybox-static has linked into /bin, as the real busybox image has them
// (e2e specs exec sysctl, nslookup, wget and more).
func busyboxFiles() ([]registry.File, error) {
	files, err := registry.BusyboxFiles()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	have := map[string]bool{"busybox": true}
	for _, a := range registry.Applets {
		have[a] = true
	}
	for _, a := range strings.Fields(string(out)) {
		if !have[a] {
			files = append(files, registry.File{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox"})
		}
	}
	return files, nil
}

func busybox(*Cluster) (v1.Image, error) { return onBusybox(v1.Config{Cmd: []string{"sh"}}) }

// onBusybox is the busybox stand-in with cfg, and files added above it.
func onBusybox(cfg v1.Config, files ...registry.File) (v1.Image, error) {
	base, err := busyboxFiles()
	if err != nil {
		return nil, err
	}
	l, err := registry.Layer(append(base, files...))
	if err != nil {
		return nil, err
	}
	cfg.Env = append(cfg.Env, imagePath)
	return registry.Image(cfg, l)
}

func nonroot(*Cluster) (v1.Image, error) {
	return onBusybox(v1.Config{Cmd: []string{"sh"}, User: "1234"})
}

// nonewprivs runs nnp, which prints its effective UID: 0 through its
// set-user-ID bit, unless no_new_privs stops it.
func nonewprivs(c *Cluster) (v1.Image, error) {
	data, err := os.ReadFile(filepath.Join(c.Spec.BinDir, "nnp"))
	if err != nil {
		return nil, err
	}
	return onBusybox(v1.Config{Cmd: []string{"nnp"}},
		registry.File{Name: "usr/", Type: tar.TypeDir}, registry.File{Name: "usr/local/", Type: tar.TypeDir},
		registry.File{Name: "usr/local/bin/", Type: tar.TypeDir},
		registry.File{Name: "usr/local/bin/nnp", Body: data, Mode: 0o4755})
}

// webServer is busybox's httpd on port 80 serving root, with the page the
// real image serves.
func webServer(root string) (v1.Image, error) {
	files := append(dirsFor(root+"/index.html"),
		registry.File{Name: strings.TrimPrefix(root, "/") + "/index.html", Body: []byte("<html><body><h1>It works!</h1></body></html>\n")})
	return onBusybox(v1.Config{Cmd: []string{"httpd", "-f", "-p", "80", "-h", root},
		ExposedPorts: map[string]struct{}{"80/tcp": {}}}, files...)
}

func httpd(*Cluster) (v1.Image, error) { return webServer("/usr/local/apache2/htdocs") }
func nginx(*Cluster) (v1.Image, error) { return webServer("/usr/share/nginx/html") }

// single is an image of one static program at /NAME, its entrypoint.
func single(path, name string) (v1.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l, err := registry.Layer([]registry.File{{Name: name, Body: data, Mode: 0o755}})
	if err != nil {
		return nil, err
	}
	return registry.Image(v1.Config{Entrypoint: []string{"/" + name}}, l)
}

func pause(c *Cluster) (v1.Image, error) {
	return single(filepath.Join(c.Spec.BinDir, "pause"), "pause")
}

func coredns(c *Cluster) (v1.Image, error) {
	return single(filepath.Join(c.Spec.BinDir, "coredns"), "coredns")
}

// debianTools are the programs agnhost's specs exec besides agnhost, and
// where the image has them: Debian's dash as /bin/sh, because Debian's
// busybox-static is a "standalone" shell that runs its own applets before
// PATH (its nc has no -u), where upstream's Alpine shell finds
// /usr/bin/nc; bash, curl, dig, nslookup, OpenBSD's nc, iproute2's ip and
// getent (e2e's DNS probes ask it for hosts).
var debianTools = []struct{ name, dest string }{
	{"dash", "bin/sh"}, {"bash", "bin/bash"},
	{"curl", "usr/bin/curl"}, {"dig", "usr/bin/dig"}, {"nslookup", "usr/bin/nslookup"},
	{"nc", "usr/bin/nc"}, {"ip", "usr/bin/ip"}, {"getent", "usr/bin/getent"},
}

// toolsLayer holds agnhost's file system beyond busybox: the Debian tools
// with the shared libraries ldd names, at their real paths (merged /usr),
// and upstream's extras: the agnhost-2 link, /uploads, porter's TLS
// certificate and key (made here), and the user and group agnhost's image
// defines.
func toolsLayer() (v1.Layer, error) {
	files := []registry.File{
		{Name: "usr/", Type: tar.TypeDir}, {Name: "usr/bin/", Type: tar.TypeDir}, {Name: "usr/lib/", Type: tar.TypeDir},
		{Name: "usr/lib64/", Type: tar.TypeDir},
		{Name: "lib", Type: tar.TypeSymlink, Linkname: "usr/lib"}, {Name: "lib64", Type: tar.TypeSymlink, Linkname: "usr/lib64"},
		{Name: "uploads/", Type: tar.TypeDir}, {Name: "agnhost-2", Type: tar.TypeSymlink, Linkname: "agnhost"},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000:Linux User:/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Name: "etc/group", Body: []byte("root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n")},
	}
	crt, key, err := selfSigned()
	if err != nil {
		return nil, err
	}
	files = append(files, registry.File{Name: "localhost.crt", Body: crt}, registry.File{Name: "localhost.key", Body: key, Mode: 0o600})
	seen := map[string]bool{}
	libs := map[string]bool{}
	for _, tool := range debianTools {
		path, err := exec.LookPath(tool.name)
		if err != nil {
			return nil, fmt.Errorf("%s missing: install Debian's dash, bash, curl, bind9-dnsutils, netcat-openbsd and iproute2 (hack/install-deps.sh does)", tool.name)
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return nil, err
		}
		files = append(files, registry.File{Name: tool.dest, Body: data, Mode: 0o755})
		deps, err := sharedLibraries(real)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			libs[d] = true
		}
	}
	var sorted []string
	for l := range libs {
		sorted = append(sorted, l)
	}
	sort.Strings(sorted)
	for _, lib := range sorted {
		// Keep the name the loader asks for, in its dir's real place.
		dir, err := filepath.EvalSymlinks(filepath.Dir(lib))
		if err != nil {
			return nil, err
		}
		target := strings.TrimPrefix(filepath.Join(dir, filepath.Base(lib)), "/")
		if seen[target] {
			continue
		}
		seen[target] = true
		data, err := os.ReadFile(lib)
		if err != nil {
			return nil, err
		}
		for _, d := range dirsFor("/" + target) {
			if !seen[d.Name] {
				seen[d.Name] = true
				files = append(files, d)
			}
		}
		files = append(files, registry.File{Name: target, Body: data, Mode: 0o755})
	}
	return registry.Layer(files)
}

var lddLine = regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)

// sharedLibraries lists the absolute paths ldd resolves for binary,
// the dynamic loader included.
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	var libs []string
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs, nil
}

// dirsFor lists the directories above path (not /usr, /usr/lib and the
// others toolsLayer makes itself), as layer entries.
func dirsFor(path string) []registry.File {
	var dirs []registry.File
	parts := strings.Split(strings.Trim(filepath.Dir(path), "/"), "/")
	for i := range parts {
		d := strings.Join(parts[:i+1], "/") + "/"
		switch d {
		case "usr/", "usr/bin/", "usr/lib/", "usr/lib64/", "bin/", "etc/", "tmp/":
			continue
		}
		dirs = append(dirs, registry.File{Name: d, Type: tar.TypeDir})
	}
	return dirs
}

// agnhostFS is busybox, the Debian tools and /agnhost: built once per
// cluster, as the agnhost and jessie-dnsutils images share it.
func agnhostFS(c *Cluster) ([]v1.Layer, error) {
	if c.agnhostLayers != nil {
		return c.agnhostLayers, nil
	}
	files, err := busyboxFiles()
	if err != nil {
		return nil, err
	}
	base, err := registry.Layer(files)
	if err != nil {
		return nil, err
	}
	tools, err := toolsLayer()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(c.Spec.BinDir, "agnhost"))
	if err != nil {
		return nil, err
	}
	bin, err := registry.Layer([]registry.File{{Name: "agnhost", Body: data, Mode: 0o755}})
	if err != nil {
		return nil, err
	}
	c.agnhostLayers = []v1.Layer{base, tools, bin}
	return c.agnhostLayers, nil
}

// agnhost is upstream's layout: /agnhost as the entrypoint, pause as the command.
func agnhost(c *Cluster) (v1.Image, error) {
	layers, err := agnhostFS(c)
	if err != nil {
		return nil, err
	}
	return registry.Image(v1.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, Env: []string{imagePath}}, layers...)
}

func dnsutils(c *Cluster) (v1.Image, error) {
	layers, err := agnhostFS(c)
	if err != nil {
		return nil, err
	}
	return registry.Image(v1.Config{Cmd: []string{"sh"}, Env: []string{imagePath}}, layers...)
}
