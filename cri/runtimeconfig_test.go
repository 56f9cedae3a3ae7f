package cri

import (
	"context"
	"testing"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubelet refuses to start when its cgroupDriver differs from the one
// RuntimeConfig reports: it must follow --cgroup-driver.
func TestRuntimeConfigReportsTheCgroupDriver(t *testing.T) {
	defer cgroupdriver.Set(cgroupdriver.Cgroupfs)
	for d, want := range map[cgroupdriver.Driver]runtimeapi.CgroupDriver{
		cgroupdriver.Cgroupfs: runtimeapi.CgroupDriver_CGROUPFS,
		cgroupdriver.Systemd:  runtimeapi.CgroupDriver_SYSTEMD,
	} {
		cgroupdriver.Set(d)
		resp, err := (&Server{}).RuntimeConfig(context.Background(), &runtimeapi.RuntimeConfigRequest{})
		if err != nil || resp.GetLinux().GetCgroupDriver() != want {
			t.Errorf("driver %s: RuntimeConfig %v, %v; want %v", d, resp, err, want)
		}
	}
}
