package testlab

import (
	"os"
	"strings"
	"testing"
)

// TempDir returns t.TempDir(), or, when its path is longer than maxLen
// (0: any length), as Unix sockets in it cannot be, or holds characters
// that a daemon's configuration would split, expand or take for a comment
// (space, '%', '#', quotes, ...), a directory under /tmp named after
// prefix, removed at cleanup.
func TempDir(t testing.TB, prefix string, maxLen int) string {
	t.Helper()
	dir := t.TempDir()
	if (maxLen == 0 || len(dir) <= maxLen) && SafePath(dir) {
		return dir
	}
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatalf("%s: %v", prefix, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// SafePath reports whether p holds only letters, digits and "/._-+".
func SafePath(p string) bool {
	for _, r := range p {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("/._-+", r):
		default:
			return false
		}
	}
	return true
}
