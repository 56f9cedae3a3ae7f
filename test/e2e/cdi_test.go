package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A CDI spec written while netshim runs, into the dir it was started with,
// gives a container that names its device (in CDI_devices, or in a
// cdi.k8s.io/ annotation as device plugins do) a device node (the node's
// /dev/null under another path), a mount and an environment variable; a
// device no spec defines is refused, naming it.
func TestCDIDevicesReachTheContainer(t *testing.T) {
	specDir, hostDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "cdi-file"), []byte("from the CDI spec\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startShim(t, withArgs("--cdi-spec-dirs", specDir))
	bb := busyboxImage(t)
	s.pull(bb)
	spec := `cdiVersion: "0.6.0"
kind: netshim.e2e/dev
devices:
- name: null0
  containerEdits:
    deviceNodes:
    - path: /dev/netshim-null
      hostPath: /dev/null
    env:
    - NETSHIM_CDI=null0
    mounts:
    - hostPath: ` + hostDir + `
      containerPath: /cdi-mount
      options: [ro, bind]
`
	if err := os.WriteFile(filepath.Join(specDir, "netshim-e2e.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	podCfg := podWithLogs(t, "cdi")
	pod := s.runPod(podCfg)

	byField := ctrConfig("field", bb, "sleep 300")
	byField.CDIDevices = []*runtimeapi.CDIDevice{{Name: "netshim.e2e/dev=null0"}}
	byAnnotation := ctrConfig("annotation", bb, "sleep 300")
	byAnnotation.Annotations = map[string]string{"cdi.k8s.io/netshim-e2e_null0": "netshim.e2e/dev=null0"}
	for _, cfg := range []*runtimeapi.ContainerConfig{byField, byAnnotation} {
		id := s.runContainer(pod, podCfg, cfg)
		got := s.execSync(id, "sh", "-c", `stat -c '%F %t:%T' /dev/netshim-null; echo written > /dev/netshim-null && echo write-ok; cat /cdi-mount/cdi-file; echo "env=$NETSHIM_CDI"`)
		want := "character special file 1:3\nwrite-ok\nfrom the CDI spec\nenv=null0\n"
		if got != want {
			t.Errorf("%s: inside the container:\n%s\nwant:\n%s", cfg.Metadata.Name, got, want)
		}
	}

	unknown := ctrConfig("unknown", bb, "sleep 300")
	unknown.CDIDevices = []*runtimeapi.CDIDevice{{Name: "netshim.e2e/dev=gpu7"}}
	_, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: unknown, SandboxConfig: podCfg})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "netshim.e2e/dev=gpu7") {
		t.Errorf("an unknown CDI device: %v, want InvalidArgument naming it", err)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNoContainersLeft()
}
