package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// junitReport is the part of ginkgo v2's JUnit report the table needs.
type junitReport struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string `xml:"name,attr"`
	Status  string `xml:"status,attr"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

// spec is one of critest's specs and how it ended.
type spec struct {
	Name, Status, Reason string
}

// knownReasons explain failures that are not netshim's, by a piece of the
// spec's name.
var knownReasons = map[string]string{
	"image with digest":   "critest pulls gcr.io/k8s-staging-cri-tools/test-image-digest by an upstream digest; no image built here can have it",
	"support MaskedPaths": "the stand-in busybox (Debian's busybox-static) runs ls as a built-in applet of sh, so `sh -c ls` never executes the masked /bin/ls; `/bin/ls` itself is masked",
}

func readJUnit(path string) ([]spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var specs []spec
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			if !strings.HasPrefix(c.Name, "[It]") {
				continue // suite set-up and tear-down nodes
			}
			sp := spec{Name: strings.TrimSpace(strings.TrimPrefix(c.Name, "[It]")), Status: c.Status}
			switch {
			case c.Failure != nil:
				sp.Reason = firstLine(c.Failure.Message)
				if sp.Reason == "" {
					sp.Reason = firstLine(c.Failure.Text)
				}
			case c.Skipped != nil:
				sp.Reason = firstLine(c.Skipped.Message)
			}
			for part, why := range knownReasons {
				if sp.Status != "passed" && strings.Contains(sp.Name, part) {
					sp.Reason = why + " (" + sp.Reason + ")"
				}
			}
			specs = append(specs, sp)
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, nil
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 240 {
				line = line[:240] + "…"
			}
			return line
		}
	}
	return ""
}

// writeReport writes the per-spec table in Markdown.
func writeReport(w io.Writer, specs []spec, critestVersion string, elapsed time.Duration) {
	counts := map[string]int{}
	for _, s := range specs {
		counts[s.Status]++
	}
	fmt.Fprintf(w, "# CRI conformance: critest against netshim\n\n")
	fmt.Fprintf(w, "Written by `make critest` (test/critest) on %s, %s, in %s.\n",
		time.Now().UTC().Format("2006-01-02"), critestVersion, elapsed.Round(time.Second))
	fmt.Fprintf(w, "netshim ran on temp dirs with the stand-in test images from a loopback registry\n"+
		"as the mirror of every registry critest names; nothing came from the internet.\n\n")
	ran := len(specs) - counts["skipped"] - counts["pending"]
	fmt.Fprintf(w, "**%d of the %d specs that ran passed**", counts["passed"], ran)
	var rest []string
	for _, st := range []string{"failed", "skipped", "pending", "panicked", "timedout", "interrupted", "aborted"} {
		if counts[st] > 0 {
			rest = append(rest, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	if len(rest) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(rest, ", "))
	}
	fmt.Fprintf(w, ".\n\n| spec | result | why it did not pass |\n| --- | --- | --- |\n")
	for _, s := range specs {
		fmt.Fprintf(w, "| %s | %s | %s |\n", escapeCell(s.Name), s.Status, escapeCell(s.Reason))
	}
}

func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
