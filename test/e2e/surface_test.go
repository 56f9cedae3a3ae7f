package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// What kubelet, crictl and critest call the moment they connect.
func TestCRISurfaceClientsNeedOnConnect(t *testing.T) {
	s := startShim(t)
	ctx := s.ctx()
	v, err := s.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.Version != "0.1.0" || v.RuntimeName != "netshim" || v.RuntimeApiVersion != "v1" {
		t.Errorf("Version = %+v, %v; want version 0.1.0, name netshim, API v1", v, err)
	}
	// The build's own version, as `netshim --version` prints it.
	out, _ := exec.Command(filepath.Join(binDir, "netshim"), "--version").Output()
	if v.GetRuntimeVersion() == "" || !strings.Contains(string(out), "netshim "+v.GetRuntimeVersion()+" ") {
		t.Errorf("RuntimeVersion %q is not the one --version prints (%q)", v.GetRuntimeVersion(), out)
	}
	rc, err := s.rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig = %+v, %v; want the cgroupfs driver", rc, err)
	}
	if _, err := s.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "198.18.0.0/24"}}}); err != nil {
		t.Errorf("UpdateRuntimeConfig: %v", err)
	}
	if _, err := s.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "not-a-cidr"}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateRuntimeConfig with a bad CIDR: %v, want InvalidArgument", err)
	}
	if lc, err := s.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil || len(lc.Containers) != 0 {
		t.Errorf("ListContainers = %v, %v; want an empty list", lc, err)
	}
	if _, err := s.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: "nope"}); err != nil {
		t.Errorf("StopContainer of an unknown ID: %v, want success", err)
	}
	if _, err := s.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: "nope"}); err != nil {
		t.Errorf("RemoveContainer of an unknown ID: %v, want success", err)
	}
	if fs, err := s.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{}); err != nil || len(fs.ImageFilesystems) != 1 {
		t.Errorf("ImageFsInfo = %v, %v; want one filesystem", fs, err)
	}
	if li, err := s.img.ListImages(ctx, &runtimeapi.ListImagesRequest{}); err != nil || len(li.Images) != 0 {
		t.Errorf("ListImages = %v, %v; want an empty list", li, err)
	}
	if is, err := s.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}}); err != nil || is.Image != nil {
		t.Errorf("ImageStatus of an unknown image = %v, %v; want a nil image", is, err)
	}
	if _, err := s.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}}); err != nil {
		t.Errorf("RemoveImage of an unknown image: %v, want success", err)
	}
	_, err = s.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "config.metadata.name") {
		t.Errorf("an empty CreateContainer: %v, want InvalidArgument naming the field", err)
	}
	if _, err := s.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "nosuch"}); status.Code(err) != codes.NotFound ||
		!strings.Contains(status.Convert(err).Message(), `"nosuch" not found`) {
		t.Errorf("PodSandboxStatus of an unknown ID: %v, want NotFound naming it", err)
	}
}

// Bad requests get InvalidArgument with a sentence naming the field, and
// touch nothing.
func TestBadRunPodSandboxRequests(t *testing.T) {
	s := startShim(t)
	for field, mutate := range map[string]func(*runtimeapi.PodSandboxConfig){
		"config.metadata.name":      func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" },
		"config.metadata.namespace": func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" },
		"config.metadata.uid":       func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" },
	} {
		cfg := podConfig("bad")
		mutate(cfg)
		_, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) {
			t.Errorf("empty %s: %v, want InvalidArgument naming it", field, err)
		}
	}
	cfg := podConfig("dup")
	s.runPod(cfg)
	if _, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second RunPodSandbox of one pod attempt: %v, want AlreadyExists", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "root", "sandboxes")); len(entries) != 1 {
		t.Errorf("%d checkpoints after the bad requests, want only the good pod's", len(entries))
	}
}

// Network Init switches bridge-nf-call-iptables on (where the kernel has it).
func TestInitEnablesBridgeNetfilter(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		// CI runs where the bridge plugin is safe: br_netfilter loaded.
		if os.Getenv("CI") == "true" {
			t.Fatalf("this kernel has no br_netfilter (modprobe br_netfilter), and CI=true: %v", err)
		}
		t.Skip("this kernel has no br_netfilter: nothing for Init to set")
	}
	names := []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"}
	// Switch them off first (restored afterwards), so only Init can turn them on.
	for _, name := range names {
		path := "/proc/sys/net/bridge/" + name
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(path, orig, 0o644) })
		if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startShim(t)
	for _, name := range names {
		data, err := os.ReadFile("/proc/sys/net/bridge/" + name)
		if err != nil || strings.TrimSpace(string(data)) != "1" {
			t.Errorf("%s = %q (err %v), want 1", name, data, err)
		}
	}
}

// --hairpin-mode under the cni plugin: hairpin-veth sets hairpin_mode on the
// pod's bridge port; promiscuous-bridge does the same (kubelet's rule: only
// kubenet owns its bridge), never touching the CNI config's bridge; none does
// neither.
func TestHairpinModes(t *testing.T) {
	for mode, wantHairpin := range map[string]bool{"promiscuous-bridge": true, "hairpin-veth": true, "none": false} {
		t.Run(mode, func(t *testing.T) {
			s := startShim(t, withArgs("--hairpin-mode", mode))
			s.runPod(podConfig("hairpin"))
			br, err := netlink.LinkByName(s.net.Bridge)
			if err != nil {
				t.Fatal(err)
			}
			ports := s.bridgePorts()
			if len(ports) != 1 {
				t.Fatalf("bridge ports %v, want one", ports)
			}
			hairpin, err := os.ReadFile(filepath.Join("/sys/class/net", ports[0], "brport/hairpin_mode"))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(hairpin)) == "1"; got != wantHairpin {
				t.Errorf("port hairpin_mode %v, want %v", got, wantHairpin)
			}
			if br.Attrs().Promisc != 0 {
				t.Error("the CNI config's bridge was put in promiscuous mode")
			}
		})
	}
}
