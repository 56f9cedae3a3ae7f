package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Save writes the report as JSON, for Compare.
func (r *Report) Save(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Load reads a report written by Save.
func Load(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// figures are the numbers compared: name and value, lower is better unless perSecond.
type figure struct {
	name      string
	value     func(*Report) float64
	perSecond bool
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var figures = []figure{
	{"RunPodSandbox median ms", func(r *Report) float64 { return msOf(r.Run.Median) }, false},
	{"StopPodSandbox median ms", func(r *Report) float64 { return msOf(r.Stop.Median) }, false},
	{"RemovePodSandbox median ms", func(r *Report) float64 { return msOf(r.Remove.Median) }, false},
	{"stop+remove median ms", func(r *Report) float64 { return msOf(r.Stop.Median + r.Remove.Median) }, false},
	{"ListPodSandbox median ms (scale pods alive)", func(r *Report) float64 { return msOf(r.List.Median) }, false},
	{"PodSandboxStatus median ms", func(r *Report) float64 { return msOf(r.Status.Median) }, false},
	{"runtime PSS KiB", func(r *Report) float64 { return float64(r.RuntimeKiB) }, false},
	{"per-pod processes PSS KiB per pod", func(r *Report) float64 { return float64(r.PodsKiB) / float64(max(1, r.ScalePods)) }, false},
}

// containerFigures compare the container and image phases, when both ran.
var containerFigures = []figure{
	{"CreateContainer+StartContainer median ms", func(r *Report) float64 { return msOf(r.Containers.CreateStart.Median) }, false},
	{"pod with one container running, median ms", func(r *Report) float64 { return msOf(r.Containers.PodWithOne.Median) }, false},
	{"PSS KiB per pod of one running container (pause + monitor/shim)", func(r *Report) float64 { return float64(r.Containers.PerAliveKiB) }, false},
	{"PullImage 3 layers, 48 MiB, median ms", func(r *Report) float64 { return msOf(r.Containers.Pull.Median) }, false},
}

func roundFigures(r *Report) []figure {
	var out []figure
	for i, c := range r.Rounds {
		out = append(out, figure{fmt.Sprintf("concurrent %d pods/s", c.N), func(r *Report) float64 {
			if i < len(r.Rounds) {
				return r.Rounds[i].PodsPerSecond
			}
			return 0
		}, true})
	}
	return out
}

func mean(rs []*Report, f func(*Report) float64) float64 {
	var sum float64
	for _, r := range rs {
		sum += f(r)
	}
	return sum / float64(len(rs))
}

// Compare prints each figure for netshim and the anchor (each the mean of its
// runs) and the ratio that says how many times better netshim is.
func Compare(w io.Writer, netshim, anchor []*Report) {
	fmt.Fprintf(w, "figure\tnetshim\tanchor\tnetshim better by (×)\n")
	all := append(figures, roundFigures(netshim[0])...)
	if netshim[0].Containers != nil && anchor[0].Containers != nil {
		all = append(all, containerFigures...)
	}
	for _, f := range all {
		n, a := mean(netshim, f.value), mean(anchor, f.value)
		ratio := a / n // lower is better: anchor/netshim
		if f.perSecond {
			ratio = n / a
		}
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.2f\n", f.name, n, a, ratio)
	}
}
