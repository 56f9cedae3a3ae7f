package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A config change takes effect without a restart, and a pod set up before it
// is torn down with the config it was set up with: its veth leaves the old
// bridge and its IP is released in the old network's store.
func TestConfigChangeTearsDownWithTheOldConfig(t *testing.T) {
	s := startShim(t)
	before := s.runPod(podConfig("before"))
	if len(s.ipReservations()) != 1 {
		t.Fatalf("reservations %v, want the first pod's", s.ipReservations())
	}

	// A new network, lexically first, on its own bridge and store.
	otherBridge := s.net.Bridge + "b"
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(otherBridge); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	otherIPAM := filepath.Join(s.dir, "ipam-other")
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge","bridge":%q,
	  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}}]}`, otherBridge, otherIPAM, s.net.Subnet)
	if err := os.WriteFile(filepath.Join(s.confDir, "05-other.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var after string
	eventually(t, reloadWait, "a new pod on the new network", func() bool {
		id := s.runPod(podConfig("after"))
		if _, err := netlink.LinkByName(otherBridge); err == nil {
			after = id
			return true
		}
		s.removePod(id) // still the old config: try again
		return false
	})
	if entries, _ := os.ReadDir(filepath.Join(otherIPAM, "other")); len(entries) == 0 {
		t.Fatal("the new pod reserved nothing in the new network's store")
	}

	s.stopPod(before)
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("old network still holds %v after the pre-change pod stopped: DEL went to the wrong config", r)
	}
	if p := s.bridgePorts(); len(p) != 0 {
		t.Errorf("old bridge still has ports %v", p)
	}
	s.removePod(before)
	s.removePod(after)
}

// --network-plugin=none: NetworkReady with no config at all; pods get a netns
// with loopback up and nothing else.
func TestNoopPluginGivesLoopbackOnly(t *testing.T) {
	s := startShim(t, withoutConfig(), withArgs("--network-plugin", "none"))
	resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Status.Conditions {
		if c.Type == runtimeapi.NetworkReady && !c.Status {
			t.Fatalf("NetworkReady false with the no-op plugin: %s", c.Message)
		}
	}
	id := s.runPod(podConfig("plain"))
	st, info := s.status(id)
	if st.Network.Ip != "" {
		t.Errorf("pod IP %q, want none", st.Network.Ip)
	}
	var links []string
	loUp := false
	err = ns.WithNetNSPath(info.NetNSPath, func(ns.NetNS) error {
		ls, err := netlink.LinkList()
		for _, l := range ls {
			links = append(links, l.Attrs().Name)
			if l.Attrs().Name == "lo" {
				loUp = l.Attrs().Flags&net.FlagUp != 0
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || !loUp {
		t.Errorf("pod links %v (lo up: %v), want lo only, up", links, loUp)
	}
}

// The metrics endpoint reports the operations a client ran.
func TestMetricsReportOperations(t *testing.T) {
	addr := freeLoopbackAddr(t)
	s := startShim(t, withArgs("--metrics-address", addr))
	id := s.runPod(podConfig("measured"))
	s.stopPod(id)
	_, _ = s.rt.PodSandboxStatus(s.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "nosuch"})

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for series, want := range map[string]float64{
		`network_plugin_operations_duration_seconds_count{operation="set_up_pod"}`:          1,
		`network_plugin_operations_duration_seconds_count{operation="tear_down_pod"}`:       1,
		`netshim_cri_operations_duration_seconds_count{operation="RunPodSandbox"}`:          1,
		`netshim_cri_operations_duration_seconds_count{operation="StopPodSandbox"}`:         1,
		`netshim_cri_operations_errors_total{code="NotFound",operation="PodSandboxStatus"}`: 1,
		`netshim_sandboxes{state="SANDBOX_NOTREADY"}`:                                       1,
		`netshim_sandboxes{state="SANDBOX_READY"}`:                                          0,
		`netshim_containers{state="CONTAINER_RUNNING"}`:                                     0,
	} {
		if got, ok := metricValue(string(body), series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}

func metricValue(exposition, series string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(m[1]), 64)
	return v, err == nil
}

// GC at start reclaims what a crash leaked: an attachment libcni cached for
// a sandbox netshim does not know (its ADD ran, its record was lost) gets its
// DEL, which frees the IP; the known pod keeps its own.
func TestGCAtStartReclaimsLeakedAttachments(t *testing.T) {
	s := startShim(t)
	id := s.runPod(podConfig("kept"))
	st, _ := s.status(id)
	s.stop(syscall.SIGTERM)

	// Forge the leak from the known pod's cache entry: another container
	// ID, no netns (it is long gone), and an IP host-local reserved for it.
	cacheDir := filepath.Join(s.dir, "cni-cache", "results")
	real, err := os.ReadFile(filepath.Join(cacheDir, "e2e-"+id+"-eth0"))
	if err != nil {
		t.Fatal(err)
	}
	ghost := strings.Repeat("f", 64)
	var entry map[string]any
	if err := json.Unmarshal(real, &entry); err != nil {
		t.Fatal(err)
	}
	entry["containerId"], entry["netns"] = ghost, ""
	forged, _ := json.Marshal(entry)
	if err := os.WriteFile(filepath.Join(cacheDir, "e2e-"+ghost+"-eth0"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	leaked := net.IPv4(s.net.Subnet.IP[0], s.net.Subnet.IP[1], s.net.Subnet.IP[2], 200).String()
	if err := os.WriteFile(filepath.Join(s.ipamDir, "e2e", leaked), []byte(ghost+"\r\neth0"), 0o644); err != nil {
		t.Fatal(err)
	}

	s.start()
	eventually(t, reloadWait, "GC to release the leaked IP", func() bool {
		_, err := os.Stat(filepath.Join(s.ipamDir, "e2e", leaked))
		return os.IsNotExist(err)
	})
	if r := s.ipReservations(); len(r) != 1 || r[0] != st.Network.Ip {
		t.Fatalf("reservations after GC %v, want only the known pod's %s", r, st.Network.Ip)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "e2e-"+ghost+"-eth0")); !os.IsNotExist(err) {
		t.Error("the leaked attachment is still cached after GC")
	}
}

// A verbose status runs CHECK and reports it with the cached CNI result.
func TestVerboseStatusRunsCheck(t *testing.T) {
	s := startShim(t)
	id := s.runPod(podConfig("checked"))
	resp, err := s.rt.PodSandboxStatus(s.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Network map[string]string `json:"network"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatal(err)
	}
	if info.Network["check"] != "passed" || !strings.Contains(info.Network["result"], resp.Status.Network.Ip) {
		t.Fatalf("verbose network info %v: want check passed and the cached result holding %s", info.Network, resp.Status.Network.Ip)
	}
}

// Dual stack: the first IP is IPv4 and the IPv6 one is in additional_ips,
// whatever order the config lists the ranges in (here IPv6 first).
func TestDualStackReportsIPv4First(t *testing.T) {
	s := startShim(t, withIPv6())
	st, _ := s.status(s.runPod(podConfig("dual")))
	v4 := net.ParseIP(st.Network.Ip)
	if v4 == nil || v4.To4() == nil || !s.net.Subnet.Contains(v4) {
		t.Fatalf("ip %q, want an IPv4 address from %s", st.Network.Ip, s.net.Subnet)
	}
	_, v6net, _ := net.ParseCIDR(s.v6Subnet)
	if len(st.Network.AdditionalIps) != 1 || !v6net.Contains(net.ParseIP(st.Network.AdditionalIps[0].Ip)) {
		t.Fatalf("additional_ips %v, want one IPv6 address from %s", st.Network.AdditionalIps, s.v6Subnet)
	}
}

// lo is up in every pod, whether netshim sets it up in-process (the
// default) or through the loopback plugin (--cni-loopback-plugin), and the
// plugin's cached attachment goes with the pod.
func TestLoopbackIsUpEitherWay(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
	}{{"in-process", nil}, {"plugin", []string{"--cni-loopback-plugin"}}} {
		t.Run(mode.name, func(t *testing.T) {
			s := startShim(t, withArgs(mode.args...))
			id := s.runPod(podConfig("lo-" + mode.name))
			_, info := s.status(id)
			loUp := false
			err := ns.WithNetNSPath(info.NetNSPath, func(ns.NetNS) error {
				lo, err := netlink.LinkByName("lo")
				if err == nil {
					loUp = lo.Attrs().Flags&net.FlagUp != 0
				}
				return err
			})
			if err != nil || !loUp {
				t.Fatalf("lo in the pod: up %v, err %v", loUp, err)
			}
			cached, _ := filepath.Glob(filepath.Join(s.dir, "cni-cache", "results", "cni-loopback-*"))
			if (len(cached) == 1) != (mode.args != nil) {
				t.Errorf("cached loopback attachments: %v; want one only with the plugin", cached)
			}
			s.stopPod(id)
			s.removePod(id)
			if cached, _ := filepath.Glob(filepath.Join(s.dir, "cni-cache", "results", "*")); len(cached) != 0 {
				t.Errorf("cached attachments left after the remove: %v", cached)
			}
		})
	}
}
