package preflight

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func checkRuntime(ctx context.Context, c Config) Result {
	return checkProgram(ctx, c, "runc", c.OCIRuntime, Failure,
		"make install (puts runc in /usr/local/libexec/netshim), or set --oci-runtime to a runc binary")
}

func checkConmon(ctx context.Context, c Config) Result {
	return checkProgram(ctx, c, "conmon", c.Conmon, Failure,
		"apt-get install conmon, or set --conmon to its path")
}

func checkIptables(ctx context.Context, c Config) Result {
	// The bridge plugin's ipMasq, portmap and kubenet's masquerade rule call it.
	return checkProgram(ctx, c, "iptables", c.Iptables, c.networkSeverity(),
		"apt-get install iptables")
}

// checkProgram finds name (a path, or a name on PATH) and reports the first
// line of its `--version`: a binary that is there but does not run is as
// missing as one that is not there.
func checkProgram(ctx context.Context, c Config, check, name string, missing Severity, fix string) Result {
	r := Result{Check: check}
	if name == "" {
		name = check
	}
	path, err := exec.LookPath(name)
	if err != nil {
		r.Severity, r.Fix = missing, fix
		r.Message = fmt.Sprintf("%s not found: %v", name, unwrapExecError(err))
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, c.CommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	line := firstLine(out)
	if err != nil {
		r.Severity, r.Fix = missing, fix
		r.Message = fmt.Sprintf("%s does not run: `%s --version`: %v", path, path, err)
		if line != "" {
			r.Message += ": " + line
		}
		return r
	}
	if line == "" {
		line = "version unknown"
	}
	r.Message = fmt.Sprintf("%s (%s)", line, path)
	return r
}

// checkPause finds the static pause program every sandbox runs.
func checkPause(c Config) Result {
	r := Result{Check: "pause"}
	fix := "make install (puts pause in /usr/local/libexec/netshim), or set --pause-binary"
	st, err := os.Stat(c.PauseBinary)
	switch {
	case c.PauseBinary == "":
		r.Severity, r.Fix, r.Message = Failure, fix, "no pause program: none beside netshim and no --pause-binary"
	case err != nil && !filepath.IsAbs(c.PauseBinary):
		r.Severity, r.Fix, r.Message = Failure, fix, "no pause program beside netshim, in its ../libexec/netshim or on PATH"
	case err != nil:
		r.Severity, r.Fix, r.Message = Failure, fix, fmt.Sprintf("pause program %s: %v", c.PauseBinary, unwrapPathError(err))
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		r.Severity, r.Fix, r.Message = Failure, fix, fmt.Sprintf("pause program %s is not an executable file", c.PauseBinary)
	default:
		r.Message = c.PauseBinary
	}
	return r
}

func firstLine(out []byte) string {
	s := bufio.NewScanner(bytes.NewReader(out))
	if s.Scan() {
		return strings.TrimSpace(s.Text())
	}
	return ""
}

// unwrapExecError drops exec's `exec: "name":` prefix: the message names it.
func unwrapExecError(err error) error {
	var e *exec.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

// unwrapPathError drops the path from an *os.PathError: the message names it.
func unwrapPathError(err error) error {
	var e *os.PathError
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}
