// Package shorten shortens what an error message quotes: text a user gave
// or a host wrote, cut to a length, and errors, cut to their cause, so
// that a message says what it must in a line.
package shorten

import (
	"errors"
	"io/fs"
	"os/exec"
	"strings"
)

// Text returns s whole when it is at most n bytes long, else its first n
// bytes followed by "...".
func Text[T ~string | ~[]byte](s T, n int) string {
	if len(s) > n {
		return string(s[:n]) + "..."
	}
	return string(s)
}

// Line returns s without the line ends ("\n", "\r") it ends with, cut to n
// bytes as Text cuts it.
func Line[T ~string | ~[]byte](s T, n int) string {
	return Text(strings.TrimRight(string(s), "\r\n"), n)
}

// LastLine returns the last line of s that is not blank, without the space
// around it, cut to n bytes as Text cuts it; "" when every line is blank.
func LastLine[T ~string | ~[]byte](s T, n int) string {
	text := strings.TrimSpace(string(s))
	return Text(strings.TrimSpace(text[strings.LastIndexByte(text, '\n')+1:]), n)
}

// Error returns the cause of a file error (*fs.PathError) or of a failed
// command lookup (*exec.Error), without the operation, path or command
// name, for a message that names them already; any other error is
// returned as it is.
func Error(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return execErr.Err
	}
	return err
}
