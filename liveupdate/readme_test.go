package liveupdate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every Go snippet in README.md is quoted from an Example function, which
// the compiler checks: each snippet's lines must appear, in order and
// together, in one of the example files.
func TestReadmeSnippetsAreExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, pattern := range []string{"*example*_test.go", "fake/*example*_test.go"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sources = append(sources, "\n"+normalize(string(b)))
		}
	}
	blocks := goBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippets")
	}
	for i, block := range blocks {
		want := "\n" + normalize(block)
		found := false
		for _, src := range sources {
			if strings.Contains(src, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README.md Go snippet %d is not in any Example function:\n%s", i+1, block)
		}
	}
}

// goBlocks returns the ```go fenced blocks of markdown text.
func goBlocks(md string) []string {
	var blocks []string
	for {
		start := strings.Index(md, "```go\n")
		if start < 0 {
			return blocks
		}
		md = md[start+len("```go\n"):]
		end := strings.Index(md, "```")
		if end < 0 {
			return blocks
		}
		blocks = append(blocks, md[:end])
		md = md[end:]
	}
}

// normalize trims each line and drops blank ones, so indentation does not
// matter.
func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}
