package main

import (
	"archive/tar"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/netshim/netshim/test/registry"
)

// Sources of the two small programs critest's images need, compiled here
// with gcc -static (Debian's gcc and libc6-dev, from hack/install-deps.sh).
var (
	//go:embed standins/webserver.c
	webserverSource string
	//go:embed standins/nnp.c
	nnpSource string
)

// testImage is one image critest pulls, under its path in the registry
// (the part after the registry host) and each of its tags.
type testImage struct {
	repo   string
	tags   []string
	files  []registry.File
	config v1.Config
}

const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// pgrepScript and ipcsScript stand in for two tools critest runs in its
// containers that Debian's busybox-static lacks.
const pgrepScript = `#!/bin/sh
# pgrep NAME: the PIDs of processes whose name contains NAME.
[ -n "$1" ] || exit 2
found=1
for dir in /proc/[0-9]*; do
	comm=$(cat "$dir/comm" 2>/dev/null) || continue
	pid=${dir#/proc/}
	case "$comm" in *"$1"*) [ "$pid" != "$$" ] && { echo "$pid"; found=0; } ;; esac
done
exit $found
`

const ipcsScript = `#!/bin/sh
# ipcs [-m|-q|-s]: this IPC namespace's System V objects, as the kernel lists them.
case "$1" in
-m) cat /proc/sysvipc/shm ;;
-q) cat /proc/sysvipc/msg ;;
-s) cat /proc/sysvipc/sem ;;
*) cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem ;;
esac
`

// busyboxRootfs is Debian's static busybox with every applet linked, the
// users and groups critest's specs expect, and extra files on top.
func busyboxRootfs(extra ...registry.File) ([]registry.File, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("read /bin/busybox (Debian's busybox-static): %w", err)
	}
	out, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	dir := func(name string, mode int64) registry.File {
		return registry.File{Name: name + "/", Type: tar.TypeDir, Mode: mode}
	}
	files := []registry.File{
		dir("bin", 0o755), dir("sbin", 0o755), dir("usr", 0o755), dir("usr/bin", 0o755), dir("usr/sbin", 0o755),
		dir("usr/local", 0o755), dir("usr/local/bin", 0o755), dir("etc", 0o755), dir("tmp", 0o1777), dir("root", 0o700),
		dir("home", 0o755), dir("var", 0o755), dir("var/www", 0o755), dir("var/run", 0o755),
		dir("proc", 0o555), dir("sys", 0o555), dir("dev", 0o755),
		{Name: "bin/busybox", Body: bb, Mode: 0o755},
		{Name: "bin/pgrep", Body: []byte(pgrepScript), Mode: 0o755},
		{Name: "bin/ipcs", Body: []byte(ipcsScript), Mode: 0o755},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\n" +
			"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
			"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
			"default-user:x:1000:1000::/home/default-user:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Name: "etc/group", Body: []byte("root:x:0:\ndaemon:x:1:\nwww-data:x:33:\ndefault-user:x:1000:\n" +
			"group-defined-in-image:x:50000:default-user\nnogroup:x:65534:\n")},
		{Name: "var/www/index.html", Body: []byte("<html><body>netshim critest stand-in</body></html>\n")},
	}
	taken := map[string]bool{}
	for _, f := range files {
		taken[strings.TrimSuffix(f.Name, "/")] = true
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	for _, a := range applets {
		a = strings.TrimPrefix(a, "/")
		if taken[a] || !taken[path.Dir(a)] {
			continue
		}
		taken[a] = true
		// Hard links, as in the upstream busybox images: critest masks
		// /bin/ls, and masking a symlink would mask busybox itself.
		files = append(files, registry.File{Name: a, Type: tar.TypeLink, Linkname: "bin/busybox"})
	}
	return append(files, extra...), nil
}

// compileStatic builds a static C program from source in work.
func compileStatic(work, name, source string) ([]byte, error) {
	src := filepath.Join(work, name+".c")
	bin := filepath.Join(work, name)
	if err := os.WriteFile(src, []byte(source), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command("gcc", "-Os", "-static", "-s", "-o", bin, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gcc %s: %w: %s", name, err, out)
	}
	return os.ReadFile(bin)
}

// testImages builds every image critest v1.36 pulls, except the one it
// names by an upstream digest (test-image-digest), which cannot be rebuilt.
func testImages(work, pauseBinary string) ([]testImage, error) {
	pause, err := os.ReadFile(pauseBinary)
	if err != nil {
		return nil, fmt.Errorf("read the pause program: %w", err)
	}
	webserver, err := compileStatic(work, "webserver", webserverSource)
	if err != nil {
		return nil, err
	}
	nnp, err := compileStatic(work, "nnp", nnpSource)
	if err != nil {
		return nil, err
	}
	busybox, err := busyboxRootfs()
	if err != nil {
		return nil, err
	}
	web, err := busyboxRootfs(
		registry.File{Name: "usr/sbin/nginx", Body: webserver, Mode: 0o755},
		registry.File{Name: "usr/local/bin/httpd-standin", Body: webserver, Mode: 0o755},
	)
	if err != nil {
		return nil, err
	}
	nonewprivs, err := busyboxRootfs(registry.File{Name: "usr/local/bin/nnp", Body: nnp, Mode: 0o4755})
	if err != nil {
		return nil, err
	}
	sh := v1.Config{Env: []string{imagePath}, Cmd: []string{"sh"}}
	withUser := func(user string) v1.Config { c := sh; c.User = user; return c }
	port80 := map[string]struct{}{"80/tcp": {}}
	const staging = "k8s-staging-cri-tools/"
	images := []testImage{
		{repo: "pause", tags: []string{"3.9"}, files: []registry.File{{Name: "pause", Body: pause, Mode: 0o755}},
			config: v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}},
		{repo: "e2e-test-images/busybox", tags: []string{"1.29-2"}, files: busybox, config: sh},
		{repo: "e2e-test-images/nginx", tags: []string{"1.14-2"}, files: web,
			config: v1.Config{Env: []string{imagePath}, Cmd: []string{"/usr/sbin/nginx"}, ExposedPorts: port80}},
		{repo: "e2e-test-images/httpd", tags: []string{"2.4.39-4"}, files: web,
			config: v1.Config{Env: []string{imagePath}, Cmd: []string{"/usr/local/bin/httpd-standin"}, ExposedPorts: port80}},
		{repo: "e2e-test-images/nonewprivs", tags: []string{"1.3"}, files: nonewprivs,
			config: v1.Config{Env: []string{imagePath}, Entrypoint: []string{"/usr/local/bin/nnp"}}},
		{repo: staging + "hostnet-nginx-" + runtime.GOARCH, tags: []string{"latest"}, files: web,
			config: v1.Config{Env: []string{imagePath, "HTTP_PORT=12003"}, Cmd: []string{"/usr/sbin/nginx"},
				ExposedPorts: map[string]struct{}{"12003/tcp": {}}}},
		{repo: staging + "test-image-user-uid", tags: []string{"latest"}, files: busybox, config: withUser("1002")},
		{repo: staging + "test-image-user-username", tags: []string{"latest"}, files: busybox, config: withUser("www-data")},
		{repo: staging + "test-image-user-uid-group", tags: []string{"latest"}, files: busybox, config: withUser("1003:1004")},
		{repo: staging + "test-image-user-username-group", tags: []string{"latest"}, files: busybox, config: withUser("www-data:1004")},
		{repo: staging + "test-image-predefined-group", tags: []string{"latest"}, files: busybox, config: withUser("1000")},
	}
	// Images told apart by a marker file named after them.
	for _, m := range []struct {
		repo, marker string
		tags         []string
	}{
		{"test-image-1", "test-image-1", []string{"latest"}},
		{"test-image-2", "test-image-2", []string{"latest"}},
		{"test-image-3", "test-image-3", []string{"latest"}},
		{"test-image-latest", "test-image-latest", []string{"latest"}},
		{"test-image-tag", "test-image-tag", []string{"test", "all"}},
		{"test-image-tags", "same-image", []string{"1", "2", "3"}},
	} {
		files := append(append([]registry.File(nil), busybox...), registry.File{Name: m.marker, Body: nil})
		images = append(images, testImage{repo: staging + m.repo, tags: m.tags, files: files, config: sh})
	}
	return images, nil
}

// pushImages builds each image's single layer and pushes it under every tag.
func pushImages(reg *registry.Registry, images []testImage) error {
	for _, ti := range images {
		layer, err := registry.Layer(ti.files)
		if err != nil {
			return fmt.Errorf("image %s: %w", ti.repo, err)
		}
		img, err := registry.Image(ti.config, layer)
		if err != nil {
			return fmt.Errorf("image %s: %w", ti.repo, err)
		}
		for _, tag := range ti.tags {
			if _, err := reg.Push(ti.repo, tag, img); err != nil {
				return err
			}
		}
	}
	return nil
}
