package kube

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// specReport is the part of a ginkgo v2 JSON spec report the table needs.
type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeText            string
	LeafNodeType            string
	State                   string
	RunTime                 time.Duration
	Failure                 struct{ Message string }
}

func (s specReport) name() string {
	return strings.TrimSpace(strings.Join(append(append([]string{}, s.ContainerHierarchyTexts...), s.LeafNodeText), " "))
}

func readSpecs(path string) ([]specReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []struct{ SpecReports []specReport }
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var specs []specReport
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType == "It" {
				specs = append(specs, s)
			}
		}
	}
	return specs, nil
}

// Explanation says why a spec did not pass: Match is a substring of the
// spec's full name.
type Explanation struct {
	Match, Reason string
}

// E2ETable writes the Markdown table of every spec the dry run listed,
// with its result from the runs (a later pass or failure wins over what
// came before; a skip or an interruption only fills a gap) and, for each spec that
// did not pass, the reason: an explanation that matches it, or the first
// line of its failure.
func E2ETable(dryRun string, runs []string, why []Explanation) (table string, counts map[string]int, err error) {
	all, err := readSpecs(dryRun)
	if err != nil {
		return "", nil, err
	}
	// A dry run reports the specs it would run as passed, the rest skipped.
	var listed []specReport
	for _, s := range all {
		if s.State != "skipped" {
			listed = append(listed, s)
		}
	}
	results := map[string]specReport{}
	for _, r := range runs {
		specs, err := readSpecs(r)
		if err != nil {
			return "", nil, err
		}
		for _, s := range specs {
			// A spec skipped or cut short in one run keeps what another found.
			if s.State == "passed" || s.State == "failed" || results[s.name()].State == "" {
				results[s.name()] = s
			}
		}
	}
	sort.Slice(listed, func(i, j int) bool { return listed[i].name() < listed[j].name() })
	counts = map[string]int{}
	var b strings.Builder
	b.WriteString("| spec | result | time | reason |\n| --- | --- | --- | --- |\n")
	for _, s := range listed {
		name := s.name()
		r, ran := results[name]
		state, took, reason := "not run", "", ""
		// A spec that called Skip says why; one a filter or an interrupt
		// passed over says nothing and did not run.
		if ran && (r.State != "skipped" || r.Failure.Message != "") {
			state, took = r.State, r.RunTime.Round(time.Second).String()
		}
		if state != "passed" {
			reason = firstLine(r.Failure.Message)
			for _, e := range why {
				if strings.Contains(name, e.Match) {
					reason = e.Reason
					break
				}
			}
		}
		counts[state]++
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", escapeCell(name), state, took, escapeCell(reason))
	}
	return b.String(), counts, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
