// Package testterm is test support shared by the output and end-to-end
// tests: a buffer that goroutines write while a test reads it, and
// writers that say they are terminals, of a given size or none, as the
// progress display asks. It imports only the standard library.
package testterm

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer and readers at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Terminal is a Buffer that says it is a terminal (of no known size).
type Terminal struct{ Buffer }

// IsTerminal reports true.
func (t *Terminal) IsTerminal() bool { return true }

// Sized is a Terminal of Width columns (0: a terminal that reports 0×0).
type Sized struct {
	Terminal
	Width int
}

// TerminalSize returns the width and a third of it as the height.
func (s *Sized) TerminalSize() (int, int) { return s.Width, s.Width / 3 }
