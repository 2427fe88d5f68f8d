//go:build linux

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A Makefile of the shape of tools/testing/selftests/liveupdate/Makefile.
const sampleSelftestMakefile = `# a comment
LIB_C += util.c

TEST_GEN_PROGS += first
TEST_GEN_PROGS_EXTENDED += second \
	third
TEST_GEN_PROGS_EXTENDED += fourth # trailing comment
TEST_FILES += run.sh

include ../lib.mk

CFLAGS += $(KHDR_INCLUDES)
LIB_O := $(patsubst %.c, $(OUTPUT)/%.o, $(LIB_C))
`

func TestParseSelftestMakefile(t *testing.T) {
	got, err := parseSelftestMakefile([]byte(sampleSelftestMakefile))
	if err != nil {
		t.Fatal(err)
	}
	want := selftestPrograms{Progs: []string{"first", "second", "third", "fourth"}, Lib: []string{"util.c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// "=" and ":=" replace, "+=" appends.
	got, err = parseSelftestMakefile([]byte("TEST_GEN_PROGS += a\nTEST_GEN_PROGS := b\nTEST_GEN_PROGS += c\nLIB_C = x.c\n"))
	if err != nil || strings.Join(got.Progs, " ") != "b c" || strings.Join(got.Lib, " ") != "x.c" {
		t.Errorf("assignments: %+v, %v", got, err)
	}
	for _, bad := range []string{
		"LIB_C += u.c\n",
		"TEST_GEN_PROGS += $(OUTPUT)/x\n",
		"TEST_GEN_PROGS += ../x\n",
		"TEST_GEN_PROGS += -x\n",
		"TEST_GEN_PROGS += x\nLIB_C += u.S\n",
	} {
		if p, err := parseSelftestMakefile([]byte(bad)); err == nil {
			t.Errorf("%q: %+v, want an error", bad, p)
		}
	}
}

// The real Makefile, when a tree is at hand, lists the five programs.
func TestParseRealSelftestMakefile(t *testing.T) {
	var found string
	for _, dir := range []string{os.Getenv("LUOVM_SOURCE_DIR"), "/var/cache/go-luo/x/usr/src/linux-source-7.2"} {
		if dir != "" && exists(filepath.Join(dir, selftestsSubdir, "Makefile")) {
			found = dir
			break
		}
	}
	if found == "" {
		t.Skip("no kernel tree (set LUOVM_SOURCE_DIR)")
	}
	b, err := os.ReadFile(filepath.Join(found, selftestsSubdir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSelftestMakefile(b)
	if err != nil {
		t.Fatal(err)
	}
	want := selftestPrograms{
		Progs: []string{"liveupdate", "luo_kexec_simple", "luo_multi_session", "luo_stress_sessions", "luo_stress_files"},
		Lib:   []string{"luo_test_utils.c"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestSelftestCFlags(t *testing.T) {
	got := strings.Join(selftestCFlags("/c/w/obj/usr/include", "/s/tools/testing/selftests"), " ")
	want := "-static -O2 -Wall -Wno-unused-function -D_GNU_SOURCE= -isystem /c/w/obj/usr/include -I /s/tools/testing/selftests"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if selftestsKey("1:7.2.13-1") != "1_7.2.13-1-"+selftestsRecipe {
		t.Errorf("key %s", selftestsKey("1:7.2.13-1"))
	}
}
