package cri

import (
	"bytes"
	"strings"
	"testing"
)

// A capped output cut again to fit the message limit keeps the note, and
// the first cut's bytes are not overwritten by the second.
func TestCappedBufferCutsKeepTheNote(t *testing.T) {
	b := &cappedBuffer{max: 100}
	_, _ = b.Write(bytes.Repeat([]byte("x"), 150))
	full := b.Bytes()
	if len(full) != 100 || !strings.HasSuffix(string(full), truncatedNote) {
		t.Fatalf("Bytes: %d bytes %q", len(full), full)
	}
	short := b.upTo(90)
	if len(short) != 90 || !strings.HasSuffix(string(short), truncatedNote) || !bytes.Equal(b.Bytes(), full) {
		t.Errorf("upTo(90): %d bytes %q; Bytes now %q", len(short), short, b.Bytes())
	}
	small := &cappedBuffer{max: 100}
	_, _ = small.Write([]byte("hello"))
	if got := small.upTo(100); string(got) != "hello" {
		t.Errorf("uncut output: %q", got)
	}
	if got := small.upTo(3); !strings.HasSuffix(string(got), truncatedNote) {
		t.Errorf("uncut output cut to 3 bytes: %q, want the note", got)
	}
}
