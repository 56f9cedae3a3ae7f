package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// sweepNATRules removes the nat rules and per-pod chains that CNI plugins
// made for addresses starting with prefix (a test's own subnet), as a
// failed test or a leaking netshim may leave them, and returns what it
// removed. Rules are deleted by their exact spec, never by position, so a
// rule another test adds meanwhile is never hit.
func sweepNATRules(prefix string) []string {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil
	}
	var rules [][]string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") {
			rules = append(rules, splitRule(line))
		}
	}
	// The per-pod chains: bridge's CNI-<hash>, portmap's CNI-DN-<hash>.
	podChain := func(c string) bool { return strings.HasPrefix(c, "CNI-") && !strings.HasPrefix(c, "CNI-HOSTPORT-") }
	mentions := func(r []string) bool {
		return slices.ContainsFunc(r, func(a string) bool { return strings.HasPrefix(a, prefix) || strings.Contains(a, " "+prefix) })
	}
	own := map[string]bool{}
	for _, r := range rules {
		if !mentions(r) {
			continue
		}
		if podChain(r[1]) {
			own[r[1]] = true
		}
		if t := target(r); podChain(t) {
			own[t] = true
		}
	}
	var removed []string
	for _, r := range rules {
		if own[r[1]] || !(mentions(r) || own[target(r)]) {
			continue // a per-pod chain's own rules go with the chain
		}
		if exec.Command("iptables", append([]string{"-t", "nat", "-D"}, r[1:]...)...).Run() == nil {
			removed = append(removed, strings.Join(r, " "))
		}
	}
	for c := range own {
		_ = exec.Command("iptables", "-t", "nat", "-F", c).Run()
		if exec.Command("iptables", "-t", "nat", "-X", c).Run() == nil {
			removed = append(removed, "chain "+c)
		}
	}
	return removed
}

// target is the chain or action a rule jumps to ("" if none).
func target(rule []string) string {
	if i := slices.Index(rule, "-j"); i >= 0 && i+1 < len(rule) {
		return rule[i+1]
	}
	return ""
}

// splitRule splits an iptables-save line into arguments: words, or
// double-quoted strings with backslash escapes (comments).
func splitRule(line string) []string {
	var (
		args    []string
		cur     strings.Builder
		inQuote bool
		inWord  bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, inWord = !inQuote, true
		case c == ' ' && !inQuote:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args
}

func TestSplitRuleKeepsQuotedComments(t *testing.T) {
	got := splitRule(`-A POSTROUTING -s 198.18.3.2/32 -m comment --comment "name: \"e2e\" id: \"ab\"" -j CNI-1f`)
	want := []string{"-A", "POSTROUTING", "-s", "198.18.3.2/32", "-m", "comment", "--comment", `name: "e2e" id: "ab"`, "-j", "CNI-1f"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitRule = %q, want %q", got, want)
	}
}

// The sweep removes a pod's masquerade rule and chain as the bridge plugin
// writes them, and nothing of another subnet.
func TestSweepNATRulesRemovesOnlyTheSubnetsRules(t *testing.T) {
	mine, other := newTestNet(t), newTestNet(t)
	ip := func(n testNet, host string) string { return strings.TrimSuffix(n.Subnet.IP.String(), "0") + host }
	add := func(chain, src string) {
		t.Helper()
		for _, args := range [][]string{
			{"-t", "nat", "-N", chain},
			{"-t", "nat", "-A", chain, "-d", src + "/24", "-m", "comment", "--comment", `name: "e2e" id: "x"`, "-j", "ACCEPT"},
			{"-t", "nat", "-A", "POSTROUTING", "-s", src + "/32", "-m", "comment", "--comment", `name: "e2e" id: "x"`, "-j", chain},
		} {
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %v: %v: %s", args, err, out)
			}
		}
	}
	add("CNI-e2e"+mine.Bridge[6:], ip(mine, "2"))
	add("CNI-e2e"+other.Bridge[6:], ip(other, "2"))
	t.Cleanup(func() { sweepNATRules(ip(other, "")) })

	removed := sweepNATRules(ip(mine, ""))
	if len(removed) != 2 {
		t.Fatalf("removed %q, want the POSTROUTING rule and the chain", removed)
	}
	out, _ := exec.Command("iptables-save", "-t", "nat").Output()
	if strings.Contains(string(out), ip(mine, "")) {
		t.Fatal("rules of the swept subnet are still there")
	}
	if !strings.Contains(string(out), ip(other, "2")) {
		t.Fatal("the sweep removed another subnet's rules")
	}
}
