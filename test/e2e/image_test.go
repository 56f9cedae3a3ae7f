package e2e

import (
	"archive/tar"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/test/registry"
)

// appImage is busybox (plus /opt/old/{a,b}) and a layer that deletes
// /etc/group (a whiteout), makes /opt/old opaque with only c in it, adds a
// file of the app user, a hard link and a symlink to it; "app" is its user.
func appImage(t *testing.T) v1.Image {
	t.Helper()
	files, err := registry.BusyboxFiles()
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, registry.File{Name: "opt/", Type: tar.TypeDir}, registry.File{Name: "opt/old/", Type: tar.TypeDir},
		registry.File{Name: "opt/old/a", Body: []byte("a")}, registry.File{Name: "opt/old/b", Body: []byte("b")})
	base, err := registry.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	top, err := registry.Layer([]registry.File{
		{Name: "etc/.wh.group"},
		{Name: "opt/old/", Type: tar.TypeDir},
		{Name: "opt/old/.wh..wh..opq"},
		{Name: "opt/old/c", Body: []byte("c")},
		{Name: "home/app/data", Body: []byte("app data\n"), UID: 1000, GID: 1000, Mode: 0o640},
		{Name: "home/app/link", Type: tar.TypeLink, Linkname: "home/app/data"},
		{Name: "home/app/sym", Type: tar.TypeSymlink, Linkname: "data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.Image(v1.Config{Cmd: []string{"sh"}, User: "app", Env: []string{"PATH=/bin"}}, base, top)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (s *shim) imageStatus(ref string) *runtimeapi.Image {
	s.t.Helper()
	resp, err := s.img.ImageStatus(s.ctx(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		s.t.Fatalf("ImageStatus %s: %v", ref, err)
	}
	return resp.Image
}

// storeEntries counts what the image store holds in dir (layers, blobs/sha256, tmp).
func (s *shim) storeEntries(dir string) int {
	entries, _ := os.ReadDir(filepath.Join(s.dir, "root", "images", dir))
	return len(entries)
}

// A pull by tag and by digest, then every way crictl names an image: the
// answers are containerd's, and removing by one of two tags only untags.
func TestPullInspectRemove(t *testing.T) {
	reg := testRegistry(t)
	img := appImage(t)
	digestRef, err := reg.Push("e2e/app", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("e2e/app", "v2", img); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	id := s.pull(reg.Addr + "/e2e/app:v1")
	if id2 := s.pull(reg.Addr + "/e2e/app:v2"); id2 != id {
		t.Fatalf("two tags of one image pulled as %s and %s", id, id2)
	}
	if id3 := s.pull(digestRef); id3 != id {
		t.Fatalf("pull by digest gave %s, want %s", id3, id)
	}
	list, err := s.img.ListImages(s.ctx(), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 1 {
		t.Fatalf("ListImages: %v, %d images, want 1", err, len(list.Images))
	}
	got := list.Images[0]
	wantTags := []string{reg.Addr + "/e2e/app:v1", reg.Addr + "/e2e/app:v2"}
	slices.Sort(got.RepoTags)
	if got.Id != id || !slices.Equal(got.RepoTags, wantTags) || !slices.Equal(got.RepoDigests, []string{digestRef}) ||
		got.Size < 1<<20 || got.Username != "app" || got.Uid != nil {
		t.Errorf("ListImages: %+v\nwant id %s, tags %v, digest %s, size over 1 MiB, user app", got, id, wantTags, digestRef)
	}
	for _, ref := range []string{reg.Addr + "/e2e/app:v1", id, strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(id, "sha256:")[:12], digestRef} {
		if st := s.imageStatus(ref); st == nil || st.Id != id {
			t.Errorf("ImageStatus %s: %v, want %s", ref, st, id)
		}
	}
	if st := s.imageStatus(reg.Addr + "/e2e/nosuch:1"); st != nil {
		t.Errorf("ImageStatus of an image never pulled: %v, want none", st)
	}
	fs, err := s.img.ImageFsInfo(s.ctx(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() < 1<<20 || fs.ImageFilesystems[0].InodesUsed.GetValue() < 50 {
		t.Errorf("ImageFsInfo: %v %v, want over 1 MiB and 50 inodes used", fs, err)
	}

	// Removing by one of two tags keeps the image under the other.
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Addr + "/e2e/app:v1"}}); err != nil {
		t.Fatal(err)
	}
	if st := s.imageStatus(reg.Addr + "/e2e/app:v2"); st == nil || !slices.Equal(st.RepoTags, wantTags[1:]) {
		t.Errorf("after removing tag v1: %v, want the image tagged v2 only", st)
	}
	if st := s.imageStatus(reg.Addr + "/e2e/app:v1"); st != nil {
		t.Errorf("removed tag v1 still names %s", st.Id)
	}
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
		t.Fatal(err)
	}
	if st := s.imageStatus(id); st != nil {
		t.Errorf("removed by ID, still there: %v", st)
	}
	if n := s.storeEntries("layers"); n != 0 {
		t.Errorf("%d layers left after the only image was removed", n)
	}
	// Removing what is not there is no error, as kubelet expects.
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
		t.Errorf("RemoveImage of a removed image: %v", err)
	}
}

// The image's layers are unpacked as overlay expects: the whiteout hides
// /etc/group, the opaque dir hides the lower layer's files, owners and
// modes stay, hard links are links, symlinks resolve; the container runs as
// the image's user.
func TestImageContentInContainer(t *testing.T) {
	reg := testRegistry(t)
	if _, err := reg.Push("e2e/app", "content", appImage(t)); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	image := reg.Addr + "/e2e/app:content"
	s.pull(image)
	podCfg := podWithLogs(t, "content")
	pod := s.runPod(podCfg)
	ctr := s.runContainer(pod, podCfg, ctrConfig("c", image, "exec sleep 3600"))
	out := s.execSync(ctr, "sh", "-c", "id -u; test -e /etc/group && echo group-present; stat -c '%u:%g %a %h' /home/app/data; cat /home/app/link /home/app/sym; ls /opt/old")
	want := "1000\n1000:1000 640 2\napp data\napp data\nc\n"
	if out != want {
		t.Errorf("in the container:\n%s\nwant:\n%s", out, want)
	}
	s.removePod(pod)
}

func (s *shim) execSync(ctr string, cmd ...string) string {
	s.t.Helper()
	resp, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: cmd, Timeout: 30})
	if err != nil {
		s.t.Fatalf("ExecSync %q: %v", cmd, err)
	}
	if resp.ExitCode != 0 {
		s.t.Fatalf("ExecSync %q: exit %d: %s%s", cmd, resp.ExitCode, resp.Stdout, resp.Stderr)
	}
	return string(resp.Stdout)
}

// A multi-platform index resolves to this node's platform.
func TestPullIndex(t *testing.T) {
	reg := testRegistry(t)
	native := appImage(t)
	foreignFiles := []registry.File{{Name: "wrong-platform", Body: []byte("s390x\n")}}
	foreignLayer, err := registry.Layer(foreignFiles)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := registry.Image(v1.Config{Cmd: []string{"sh"}}, foreignLayer)
	if err != nil {
		t.Fatal(err)
	}
	arch := "s390x"
	if runtime.GOARCH == arch {
		arch = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	if err := reg.PushIndex("e2e/multi", "1", idx); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	id := s.pull(reg.Addr + "/e2e/multi:1")
	cfgName, err := native.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if id != cfgName.String() {
		t.Errorf("index pulled as %s, want this platform's image %s", id, cfgName)
	}
	idxDigest, _ := idx.Digest()
	if st := s.imageStatus(id); st == nil || !slices.Contains(st.RepoDigests, reg.Addr+"/e2e/multi@"+idxDigest.String()) {
		t.Errorf("repo digests %v, want the index's digest %s", st.GetRepoDigests(), idxDigest)
	}
}

// Credentials come from the request's AuthConfig; without them the pull
// fails with a sentence that says so, and leaves nothing behind.
func TestPullWithAuth(t *testing.T) {
	dir := t.TempDir()
	authReg, err := registry.Start(dir, registry.Options{Username: "kubelet", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer authReg.Stop()
	bb, err := registry.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authReg.Push("private/busybox", "1", bb); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	ref := authReg.Addr + "/private/busybox:1"
	_, err = s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err == nil || !strings.Contains(strings.ToLower(status.Convert(err).Message()), "unauthorized") {
		t.Errorf("pull without credentials: %v, want an unauthorized error", err)
	}
	_, err = s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref},
		Auth: &runtimeapi.AuthConfig{Username: "kubelet", Password: "wrong"}})
	if err == nil {
		t.Error("pull with a wrong password succeeded")
	}
	if n := s.storeEntries("blobs/sha256") + s.storeEntries("layers") + s.storeEntries("tmp"); n != 0 {
		t.Errorf("failed pulls left %d entries in the store", n)
	}
	for _, auth := range []*runtimeapi.AuthConfig{
		{Username: "kubelet", Password: "s3cret"},
		{Auth: "a3ViZWxldDpzM2NyZXQ="}, // base64 of kubelet:s3cret, as in a docker config
	} {
		if _, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth}); err != nil {
			t.Errorf("pull with %v: %v", auth, err)
		}
	}
}

// With --registry-config, an image named for registry.k8s.io comes from a
// loopback mirror, the name in the pod spec unchanged.
func TestRegistryMirror(t *testing.T) {
	reg := testRegistry(t)
	busyboxImage(t)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(reg.MirrorConfig("registry.k8s.io")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startShim(t, withArgs("--registry-config", conf))
	id := s.pull("registry.k8s.io/e2e/busybox:1")
	if st := s.imageStatus("registry.k8s.io/e2e/busybox:1"); st == nil || st.Id != id || !slices.Contains(st.RepoTags, "registry.k8s.io/e2e/busybox:1") {
		t.Errorf("mirrored image: %v, want tagged with its own name", st)
	}
}

// A digest the registry does not have is NotFound, a registry nobody
// answers at is Unavailable (kubelet's retry may succeed once it is back);
// nothing is left.
func TestPullMissing(t *testing.T) {
	reg := testRegistry(t)
	busyboxImage(t)
	s := startShim(t)
	for _, ref := range []string{
		reg.Addr + "/e2e/busybox@sha256:" + strings.Repeat("0", 64),
		reg.Addr + "/e2e/busybox:nosuchtag",
		reg.Addr + "/e2e/nosuchrepo:1",
	} {
		_, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if status.Code(err) != codes.NotFound {
			t.Errorf("pull %s: %v, want NotFound", ref, err)
		}
	}
	// A loopback port that was just closed: connection refused.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	_, err = s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: closed + "/e2e/busybox:1"}})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("pull from a registry that is not there: %v, want Unavailable", err)
	}
	_, err = s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "UPPER/case"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("pull of an invalid reference: %v, want InvalidArgument", err)
	}
	if n := s.storeEntries("blobs/sha256") + s.storeEntries("layers") + s.storeEntries("tmp"); n != 0 {
		t.Errorf("failed pulls left %d entries in the store", n)
	}
}

// Concurrent pulls of one image share its download and all succeed.
func TestConcurrentPulls(t *testing.T) {
	reg := testRegistry(t)
	if _, err := reg.Push("e2e/app", "concurrent", appImage(t)); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	ref := reg.Addr + "/e2e/app:concurrent"
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			if err != nil {
				t.Errorf("pull %d: %v", i, err)
				return
			}
			ids[i] = resp.ImageRef
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Errorf("concurrent pulls gave %v", ids)
			break
		}
	}
	if n := s.storeEntries("layers"); n != 2 {
		t.Errorf("%d layers unpacked, want 2 (each once)", n)
	}
}

// An image removed while a container uses it keeps what the container
// needs; its layers go when the container does.
func TestRemoveImageInUse(t *testing.T) {
	reg := testRegistry(t)
	if _, err := reg.Push("e2e/app", "inuse", appImage(t)); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	image := reg.Addr + "/e2e/app:inuse"
	id := s.pull(image)
	podCfg := podWithLogs(t, "inuse")
	pod := s.runPod(podCfg)
	ctr := s.runContainer(pod, podCfg, ctrConfig("c", image, "exec sleep 3600"))
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
		t.Fatal(err)
	}
	if st := s.imageStatus(id); st != nil {
		t.Errorf("removed image still listed: %v", st)
	}
	if out := s.execSync(ctr, "cat", "/home/app/data"); out != "app data\n" {
		t.Errorf("the container lost its image's files: %q", out)
	}
	if n := s.storeEntries("layers"); n != 2 {
		t.Errorf("%d layers kept for the running container, want 2", n)
	}
	s.removePod(pod)
	if n := s.storeEntries("layers"); n != 0 {
		t.Errorf("%d layers left after the container and its image were removed", n)
	}
}

// crictl info says what kubelet's --pod-infra-container-image means here.
func TestStatusNamesSandboxImage(t *testing.T) {
	s := startShim(t)
	resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := resp.Info["config"]; !strings.Contains(cfg, `"sandboxImage"`) || !strings.Contains(cfg, "pod-infra-container-image") {
		t.Errorf("Status info config %q does not say how sandboxes get their image", cfg)
	}
}

// A blob whose bytes do not match its digest is refused with a sentence
// that says so, and nothing of the image is kept.
func TestPullCorruptBlob(t *testing.T) {
	dir := t.TempDir()
	reg, err := registry.Start(dir, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	img := appImage(t)
	if _, err := reg.Push("e2e/corrupt", "1", img); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	top, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	blob := reg.BlobPath(top.String())
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	_, err = s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Addr + "/e2e/corrupt:1"}})
	if err == nil {
		t.Fatal("a corrupt layer was accepted")
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, top.Hex) {
		t.Errorf("the error does not name the bad layer %s: %v", top, err)
	}
	if list, _ := s.img.ListImages(s.ctx(), &runtimeapi.ListImagesRequest{}); len(list.GetImages()) != 0 {
		t.Errorf("a failed pull left images: %v", list.Images)
	}
	if n := s.storeEntries("tmp") + s.storeEntries("blobs/sha256"); n != 0 {
		t.Errorf("a failed pull left %d temp files or blobs", n)
	}
}

// netshim killed mid-pull (a layer unpacked, not yet committed) leaves
// nothing a restart or the next pull trips over.
func TestKillMidPull(t *testing.T) {
	reg := testRegistry(t)
	if _, err := reg.Push("e2e/app", "killed", appImage(t)); err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/e2e/app:killed"
	s := startShim(t)
	s.restartWithEnv(crashpoint.EnvVar + "=" + crashpoint.DuringImagePull)
	if _, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err == nil {
		t.Fatal("the pull finished although netshim was to die in it")
	}
	s.waitKilled()
	s.env = nil
	s.start()
	if n := s.storeEntries("tmp") + s.storeEntries("layers"); n != 0 {
		t.Errorf("after the restart the store holds %d temp files or layers", n)
	}
	if st := s.imageStatus(ref); st != nil {
		t.Errorf("a killed pull left an image: %v", st)
	}
	s.pull(ref)
	podCfg := podWithLogs(t, "afterkill")
	pod := s.runPod(podCfg)
	ctr := s.runContainer(pod, podCfg, ctrConfig("c", ref, "exec sleep 3600"))
	if out := s.execSync(ctr, "cat", "/home/app/data"); out != "app data\n" {
		t.Errorf("the image pulled again: %q", out)
	}
	s.removePod(pod)
}
