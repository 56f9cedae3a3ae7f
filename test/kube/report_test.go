package kube_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netshim/netshim/test/kube"
)

// A ginkgo JSON report of one suite with the given specs.
func writeReport(t *testing.T, name string, specs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	body := `[{"SpecReports":[` + strings.Join(specs, ",") + `]}]`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func spec(leaf, state, failure string) string {
	return `{"ContainerHierarchyTexts":["[sig-x] Thing"],"LeafNodeText":"` + leaf + `","LeafNodeType":"It","State":"` + state +
		`","RunTime":2000000000,"Failure":{"Message":"` + failure + `"}}`
}

func TestE2ETableListsEverySpecOnce(t *testing.T) {
	dry := writeReport(t, "dry.json", spec("a", "passed", ""), spec("b", "passed", ""), spec("c", "passed", ""),
		spec("d", "passed", ""), spec("e", "passed", ""), spec("f", "passed", ""), spec("g", "passed", ""),
		spec("unfocused", "skipped", ""))
	first := writeReport(t, "1.json", spec("a", "passed", ""), spec("b", "failed", `boom\nmore`), spec("c", "interrupted", "Interrupted by User"),
		spec("e", "failed", `timed out waiting\nstack`))
	second := writeReport(t, "2.json", spec("a", "interrupted", "Interrupted by User"), spec("c", "passed", ""),
		spec("f", "skipped", "Only supported for providers [gce]"), spec("g", "skipped", ""))
	table, counts, err := kube.E2ETable(dry, []string{first, second}, []kube.Explanation{{Match: "Thing b", Reason: "known: b needs the internet"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| [sig-x] Thing a | passed | 2s |  |",
		"| [sig-x] Thing b | failed | 2s | known: b needs the internet |",
		"| [sig-x] Thing c | passed | 2s |  |",
		"| [sig-x] Thing d | not run |  |  |",
		"| [sig-x] Thing e | failed | 2s | timed out waiting |",
		"| [sig-x] Thing f | skipped | 2s | Only supported for providers [gce] |",
		"| [sig-x] Thing g | not run |  |  |",
	} {
		if !strings.Contains(table, want+"\n") {
			t.Errorf("table lacks the row %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "unfocused") {
		t.Errorf("a spec the dry run skipped is in the table:\n%s", table)
	}
	if counts["passed"] != 2 || counts["failed"] != 2 || counts["not run"] != 2 || counts["skipped"] != 1 {
		t.Errorf("counts = %v, want 2 passed, 2 failed, 1 skipped, 2 not run", counts)
	}
}
