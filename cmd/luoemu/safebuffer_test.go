//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package main

import (
	"strings"
	"sync"
)

// A safeBuffer is a strings.Builder safe for one writer and readers in
// other goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
