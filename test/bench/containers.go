package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerOptions size the container and image phases.
type ContainerOptions struct {
	// Image runs the containers (pulled once first); "" skips the phases.
	Image string
	// N samples of create+start and of a whole pod with one container.
	N int
	// Alive containers (one per pod) kept running for the memory figure.
	Alive int
	// PerContainerProcesses are the command names of what the runtime keeps
	// per container (conmon; containerd's shim is per pod and counted there).
	PerContainerProcesses []string
	// PullImage is pulled Pulls times, removed before each.
	PullImage string
	Pulls     int
}

// ContainerReport is what the container and image phases measured.
type ContainerReport struct {
	CreateStart Stats // CreateContainer + StartContainer in a READY pod
	PodWithOne  Stats // RunPodSandbox + CreateContainer + StartContainer
	Alive       int
	PerAliveKiB int64 // PSS of per-pod and per-container processes with Alive running, per pod
	Pull        Stats
}

func (b *runner) containerConfig(image string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleeper"},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"/bin/sleep", "3600"},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// startContainer creates and starts one container in pod.
func (b *runner) startContainer(ctx context.Context, pod string, cfg *runtimeapi.PodSandboxConfig, image string) error {
	resp, err := b.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: b.containerConfig(image), SandboxConfig: cfg})
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if _, err := b.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	return nil
}

// podWithContainer runs a pod and one container in it, both timed together.
func (b *runner) podWithContainer(ctx context.Context, name, image string) (string, error) {
	cfg := b.config(name)
	resp, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	return resp.PodSandboxId, b.startContainer(ctx, resp.PodSandboxId, cfg, image)
}

// RunContainers times containers and pulls against rt and img. Every pod
// and image it makes it also removes (the Image it pulled first stays).
func RunContainers(ctx context.Context, rt runtimeapi.RuntimeServiceClient, img runtimeapi.ImageServiceClient, ns string, o ContainerOptions, perPod []string) (*ContainerReport, error) {
	b := &runner{rt: rt, ns: ns}
	r := &ContainerReport{}
	if o.Image != "" {
		if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: o.Image}}); err != nil {
			return nil, fmt.Errorf("pull %s: %w", o.Image, err)
		}
		var createStarts, pods []time.Duration
		for i := range o.N + 2 { // two warm-ups
			name := fmt.Sprintf("ctr-%d", i)
			cfg := b.config(name)
			resp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				return nil, err
			}
			d, err := timed(func() error { return b.startContainer(ctx, resp.PodSandboxId, cfg, o.Image) })
			b.cleanup([]string{resp.PodSandboxId})
			if err != nil {
				return nil, err
			}
			var id string
			p, err := timed(func() error { id, err = b.podWithContainer(ctx, "pwc-"+name, o.Image); return err })
			b.cleanup([]string{id})
			if err != nil {
				return nil, err
			}
			if i >= 2 {
				createStarts, pods = append(createStarts, d), append(pods, p)
			}
		}
		r.CreateStart, r.PodWithOne = summarise(createStarts), summarise(pods)
		if o.Alive > 0 {
			names := append(append([]string(nil), perPod...), o.PerContainerProcesses...)
			before := pssOf(names)
			ids := make([]string, o.Alive)
			for i := range ids {
				var err error
				if ids[i], err = b.podWithContainer(ctx, fmt.Sprintf("alive-%d", i), o.Image); err != nil {
					b.cleanup(ids)
					return nil, err
				}
			}
			time.Sleep(time.Second) // let start-up pages settle
			r.Alive = o.Alive
			r.PerAliveKiB = (pssOf(names) - before) / int64(o.Alive)
			b.cleanup(ids)
		}
	}
	if o.PullImage != "" && o.Pulls > 0 {
		var pulls []time.Duration
		for range o.Pulls {
			_, _ = img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: o.PullImage}})
			d, err := timed(func() error {
				_, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: o.PullImage}})
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("pull %s: %w", o.PullImage, err)
			}
			pulls = append(pulls, d)
		}
		_, _ = img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: o.PullImage}})
		r.Pull = summarise(pulls)
	}
	return r, nil
}

// Print writes the container report as table rows.
func (r *ContainerReport) Print(w io.Writer) {
	for _, row := range []struct {
		name string
		s    Stats
	}{{"CreateContainer+StartContainer", r.CreateStart}, {"pod with one container, running", r.PodWithOne}, {"PullImage (3 layers)", r.Pull}} {
		if row.s.N > 0 {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", row.name, row.s.N, ms(row.s.Median), ms(row.s.P90), ms(row.s.P99), ms(row.s.Max))
		}
	}
	if r.Alive > 0 {
		fmt.Fprintf(w, "memory with %d pods of one container running: %d KiB PSS per pod (pause, monitor or shim)\n", r.Alive, r.PerAliveKiB)
	}
}
