package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/netshim/netshim/cri"
	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/spf13/pflag"
)

// defaultConfigFile is read when --config is not given; it may be missing.
// Its drop-in dir is the same path with ".d" (configDropInDir).
const defaultConfigFile = "/etc/netshim/netshim.toml"

// handlersKey is the table of runtime handlers: [runtime_handlers.NAME].
const handlersKey = "runtime_handlers"

// defaultHandler is the handler of pods that name none (and of those that
// name "runc"): runc from --oci-runtime. It cannot be redefined.
const defaultHandler = "runc"

// handlerConfig is one runtime handler besides runc: an OCI runtime with
// runc's command line (runsc, crun, ...), for pods whose RuntimeHandler
// names it.
type handlerConfig struct {
	Name string
	Path string   // the runtime's binary
	Root string   // its --root state dir
	Args []string // global args before the subcommand, e.g. runsc's --platform=ptrace
}

// handlerTable is a [runtime_handlers.NAME] table as a file writes it.
// Pointers tell a key left out (an earlier file's stays) from one set empty.
type handlerTable struct {
	Path *string   `toml:"path"`
	Root *string   `toml:"root"`
	Args *[]string `toml:"args"`
}

// configDropInDir is where the drop-in files of config file path live:
// /etc/netshim/netshim.toml.d, as CRI-O's /etc/crio/crio.conf.d.
func configDropInDir(path string) string { return path + ".d" }

// configKey is the config file's key of flag name: the flag's name with
// '_' for '-' (cni-conf-dir → cni_conf_dir), as containerd's CRI keys.
func configKey(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// inConfig says whether flag f has a key of its own. --config and
// --version do not, nor check's hidden test flags; --runtime-handler is
// the runtime_handlers table.
func inConfig(f *pflag.Flag) bool {
	switch f.Name {
	case "config", "version", "runtime-handler":
		return false
	}
	return !f.Hidden
}

// loadConfig applies the config file and its drop-ins to the flags in fs
// (parsed already), in lexical order, a later file's key over an earlier
// one's and a flag given on the command line over every file. It then
// builds o.runtimeHandlers from the files' tables and --runtime-handler.
func loadConfig(fs *pflag.FlagSet, o *options) error {
	cmdline := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { cmdline[f.Name] = true })
	files, err := configFiles(o.configFile, cmdline["config"])
	if err != nil {
		return err
	}
	tables := map[string]handlerTable{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := applyConfig(fs, file, data, cmdline, tables); err != nil {
			return err
		}
	}
	if _, err := cgroupdriver.Parse(o.cgroupDriver); err != nil {
		return fmt.Errorf("--cgroup-driver (cgroup_driver): %w", err)
	}
	handlers, err := buildHandlers(tables, o.handlerFlags, o.stateDir)
	if err != nil {
		return err
	}
	o.runtimeHandlers, o.configFilesRead = handlers, files
	return nil
}

// configFiles lists the files to read: the config file, then its drop-in
// dir's *.toml in lexical order. A missing default file or drop-in dir is
// nothing to read; a missing file named by --config is an error.
func configFiles(path string, explicit bool) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	var files []string
	switch st, err := os.Stat(path); {
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("--config %s is a directory; want a TOML file (drop-ins go in %s)", path, configDropInDir(path))
	case err == nil:
		files = append(files, path)
	case !errors.Is(err, os.ErrNotExist) || explicit:
		return nil, fmt.Errorf("--config: %w", err)
	}
	dir := configDropInDir(path)
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, os.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config drop-in dir: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() { // symlinks followed
			files = append(files, p)
		}
	}
	return files, nil
}

// applyConfig sets the flags of fs from one file's keys (all but those in
// cmdline) and merges its runtime handler tables into tables. An unknown
// key, or a value of the wrong type, is an error naming file and key.
func applyConfig(fs *pflag.FlagSet, file string, data []byte, cmdline map[string]bool, tables map[string]handlerTable) error {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key == handlersKey {
			if err := mergeHandlerTables(file, data, tables); err != nil {
				return err
			}
			continue
		}
		f := fs.Lookup(key)
		if f == nil || !inConfig(f) || configKey(f.Name) != key {
			hint := ""
			if f != nil && inConfig(f) {
				hint = fmt.Sprintf(" (keys are flag names with _ for -: %s)", configKey(f.Name))
			}
			return fmt.Errorf("config %s: unknown key %q%s", file, key, hint)
		}
		if cmdline[f.Name] {
			continue // the command line wins
		}
		if err := setFromTOML(f, raw[key]); err != nil {
			return fmt.Errorf("config %s: %s: %w", file, key, err)
		}
	}
	return nil
}

// setFromTOML sets flag f from a decoded TOML value of the type its flag
// takes: a boolean, an integer, an array of strings or a string.
func setFromTOML(f *pflag.Flag, v any) error {
	var s string
	switch kind := valueKind(f); kind {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want a boolean, got %s", tomlType(v))
		}
		s = strconv.FormatBool(b)
	case "integer":
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("want an integer, got %s", tomlType(v))
		}
		s = strconv.FormatInt(n, 10)
	case "array of strings":
		list, ok := v.([]any)
		strs := make([]string, 0, len(list))
		for _, e := range list {
			str, isStr := e.(string)
			ok = ok && isStr
			strs = append(strs, str)
		}
		if !ok {
			return fmt.Errorf("want an array of strings, got %s", tomlType(v))
		}
		// Replace, not Set: Set appends once the flag is set, and a later
		// file replaces an earlier one's list.
		if err := f.Value.(pflag.SliceValue).Replace(strs); err != nil {
			return err
		}
		f.Changed = true
		return nil
	default:
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", tomlType(v))
		}
		s = str
	}
	if !f.Changed && s == f.DefValue {
		// Already so; and a few of klog's defaults (log_backtrace_at's
		// ":0") print in a form their Set does not take.
		return nil
	}
	if err := f.Value.Set(s); err != nil {
		return err
	}
	f.Changed = true
	return nil
}

// valueKind is the TOML type flag f's key takes.
func valueKind(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "Level":
		return "integer"
	}
	if _, ok := f.Value.(pflag.SliceValue); ok {
		return "array of strings"
	}
	return "string"
}

func tomlType(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// mergeHandlerTables decodes the [runtime_handlers.NAME] tables of a file
// (again, into their struct, so that TOML checks their types) into tables,
// key by key over what earlier files set.
func mergeHandlerTables(file string, data []byte, tables map[string]handlerTable) error {
	var doc struct {
		Handlers map[string]handlerTable `toml:"runtime_handlers"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return fmt.Errorf("config %s: %s: %w", file, handlersKey, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == handlersKey {
			return fmt.Errorf("config %s: unknown key %q (a runtime handler has path, root and args)", file, k.String())
		}
	}
	for name, t := range doc.Handlers {
		cur := tables[name]
		if t.Path != nil {
			cur.Path = t.Path
		}
		if t.Root != nil {
			cur.Root = t.Root
		}
		if t.Args != nil {
			cur.Args = t.Args
		}
		tables[name] = cur
	}
	return nil
}

// dns1123Label is a Kubernetes RuntimeClass handler name.
var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// buildHandlers makes the handler list, sorted by name, from the files'
// tables and the --runtime-handler NAME=PATH flags (a flag's path over a
// file's; root and args still from the file). A handler's root defaults to
// <state-dir>/runtimes/NAME: beside, not inside, runc's <state-dir>/runtime,
// whose every subdirectory runc takes for a container.
func buildHandlers(tables map[string]handlerTable, flags []string, stateDir string) ([]handlerConfig, error) {
	merged := map[string]handlerTable{}
	for name, t := range tables {
		merged[name] = t
	}
	for _, arg := range flags {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("--runtime-handler %q: want NAME=PATH, e.g. runsc=/usr/bin/runsc", arg)
		}
		t := merged[name]
		t.Path = &path
		merged[name] = t
	}
	handlers := make([]handlerConfig, 0, len(merged))
	for name, t := range merged {
		h := handlerConfig{Name: name}
		if t.Path != nil {
			h.Path = *t.Path
		}
		if t.Root != nil {
			h.Root = *t.Root
		}
		if t.Args != nil && len(*t.Args) > 0 {
			h.Args = *t.Args
		}
		if h.Root == "" {
			h.Root = filepath.Join(stateDir, "runtimes", name)
		}
		if err := h.validate(); err != nil {
			return nil, err
		}
		handlers = append(handlers, h)
	}
	sort.Slice(handlers, func(i, j int) bool { return handlers[i].Name < handlers[j].Name })
	return handlers, nil
}

func (h handlerConfig) validate() error {
	switch {
	case h.Name == defaultHandler:
		return fmt.Errorf("runtime handler %q: runc is the default handler, set by --oci-runtime (oci_runtime)", h.Name)
	case len(h.Name) > 63 || !dns1123Label.MatchString(h.Name):
		return fmt.Errorf("runtime handler %q: want a DNS-1123 label (lower-case letters, digits and '-', at most 63), as a RuntimeClass handler", h.Name)
	case h.Path == "":
		return fmt.Errorf("runtime handler %q: no path (the OCI runtime's binary)", h.Name)
	case !filepath.IsAbs(h.Root):
		return fmt.Errorf("runtime handler %q: root %q is not an absolute path", h.Name, h.Root)
	}
	return nil
}

// writeConfig prints the effective configuration as a config file netshim
// takes back as --config: every key, in --help's order, then the handlers.
func writeConfig(w io.Writer, fs *pflag.FlagSet, o *options) error {
	var buf bytes.Buffer
	buf.WriteString("# netshim's effective configuration (netshim config): the config file and its\n" +
		"# drop-ins, then the command line. Keys are the flags' names with _ for -.\n")
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !inConfig(f) {
			return
		}
		var v any
		if v, err = flagTOMLValue(f); err == nil {
			err = toml.NewEncoder(&buf).Encode(map[string]any{configKey(f.Name): v})
		}
	})
	if err != nil {
		return err
	}
	if len(o.runtimeHandlers) > 0 {
		tables := map[string]handlerTable{}
		for _, h := range o.runtimeHandlers {
			h := h
			args := h.Args
			if args == nil {
				args = []string{}
			}
			tables[h.Name] = handlerTable{Path: &h.Path, Root: &h.Root, Args: &args}
		}
		buf.WriteString("\n")
		enc := toml.NewEncoder(&buf)
		enc.Indent = ""
		if err := enc.Encode(map[string]any{handlersKey: tables}); err != nil {
			return err
		}
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// flagTOMLValue is flag f's value as its key takes it.
func flagTOMLValue(f *pflag.Flag) (any, error) {
	s := f.Value.String()
	switch valueKind(f) {
	case "boolean":
		return strconv.ParseBool(s)
	case "integer":
		return strconv.ParseInt(s, 10, 64)
	case "array of strings":
		return f.Value.(pflag.SliceValue).GetSlice(), nil
	}
	return s, nil
}

// handlerInfo is what `crictl info` shows of the runtime handlers: runc
// (--oci-runtime, resolved), then the configured ones.
func handlerInfo(o *options) []cri.RuntimeHandlerInfo {
	infos := []cri.RuntimeHandlerInfo{{Name: defaultHandler, Path: o.ociRuntime}}
	for _, h := range o.runtimeHandlers {
		infos = append(infos, cri.RuntimeHandlerInfo{Name: h.Name, Path: h.Path, Root: h.Root, Args: h.Args})
	}
	return infos
}
