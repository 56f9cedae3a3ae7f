package main

import "strings"

// TEMPORARY until the config-file branch lands: it defines these.
type handlerConfig struct {
	Name, Path, Root string
	Args             []string
}

type handlerFlag struct{ hs *[]handlerConfig }

func (f *handlerFlag) String() string { return "" }
func (f *handlerFlag) Type() string   { return "NAME=PATH" }
func (f *handlerFlag) Set(v string) error {
	name, rest, _ := strings.Cut(v, "=")
	parts := strings.Split(rest, ",")
	*f.hs = append(*f.hs, handlerConfig{Name: name, Path: parts[0], Args: parts[1:]})
	return nil
}
