package shorten

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exactly n", "abcde", 5, "abcde"},
		{"long", "abcdef", 5, "abcde..."},
		{"empty", "", 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Text(tt.s, tt.n))
			require.Equal(t, tt.want, Text([]byte(tt.s), tt.n))
		})
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello\n", 80, "hello"},
		{"hello\r\n\n", 80, "hello"},
		{"two\nlines\n", 80, "two\nlines"},
		{"  spaced  \n", 80, "  spaced  "},
		{"abcdef\n", 3, "abc..."},
		{"abc\n", 3, "abc"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Line([]byte(tt.s), tt.n), "%q", tt.s)
		require.Equal(t, tt.want, Line(tt.s, tt.n), "%q", tt.s)
	}
}

func TestLastLine(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 200, ""},
		{" \n\t\n", 200, ""},
		{"one line", 200, "one line"},
		{"first\n  last  \n\n", 200, "last"},
		{"first\n\n  \n", 200, "first"},
		{"warning\r\nfailed here\r\n", 200, "failed here"},
		{"x\nabcdef", 3, "abc..."},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, LastLine([]byte(tt.s), tt.n), "%q", tt.s)
	}
}

func TestError(t *testing.T) {
	pathErr := &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}
	other := errors.New("other")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"a file error", pathErr, syscall.ENOENT},
		{"a wrapped file error", fmt.Errorf("reading: %w", pathErr), syscall.ENOENT},
		{"a lookup error", &exec.Error{Name: "x", Err: syscall.EACCES}, syscall.EACCES},
		{"a lookup error of a file error", &exec.Error{Name: "x", Err: &fs.PathError{Op: "stat", Path: "x", Err: syscall.EACCES}}, syscall.EACCES},
		{"another error", other, other},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Error(tt.err))
		})
	}
}
