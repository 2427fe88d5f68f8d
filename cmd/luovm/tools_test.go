//go:build linux

package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestMissingTools(t *testing.T) {
	have := map[string]bool{"make": true, "gcc": true, "/usr/include/gelf.h": false}
	lookPath := func(name string) (string, error) {
		if have[name] {
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}
	stat := func(name string) (os.FileInfo, error) {
		if have[name] {
			return nil, nil
		}
		return nil, os.ErrNotExist
	}
	tools := []hostTool{
		{"make", "make", "build"},
		{"flex", "flex", "build"},
		{"xz", "xz-utils", "unpack"},
		{"unxz", "xz-utils", "unpack"},
		{"/usr/include/gelf.h", "libelf-dev", "build objtool"},
	}
	miss := missingTools(tools, lookPath, stat)
	var names []string
	for _, m := range miss {
		names = append(names, m.name)
	}
	if strings.Join(names, " ") != "flex xz unxz /usr/include/gelf.h" {
		t.Errorf("missing %q", names)
	}
	pkgs := packagesOf(miss)
	if strings.Join(pkgs, " ") != "flex xz-utils libelf-dev" {
		t.Errorf("packages %q", pkgs)
	}
	if got := strings.Join(installArgs(pkgs), " "); got != "install -y --no-install-recommends flex xz-utils libelf-dev" {
		t.Errorf("install args %q", got)
	}
	err := missingError(miss, pkgs)
	if err == nil || !strings.Contains(err.Error(), "flex (to build)") || !strings.HasSuffix(err.Error(), "apt-get install flex xz-utils libelf-dev") {
		t.Errorf("error %v", err)
	}
	if missingError(nil, nil) != nil {
		t.Error("an error with nothing missing")
	}
}

// Every build tool is named with the package that provides it.
func TestBuildToolsNamed(t *testing.T) {
	for _, tool := range buildTools {
		if tool.name == "" || tool.pkg == "" || tool.purpose == "" {
			t.Errorf("%+v", tool)
		}
	}
}
