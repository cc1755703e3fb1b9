//go:build !windows

package decode

// hostPaths are GNU parallel's rules: "/" separates directories, and a
// backslash is an ordinary byte of a name.
var hostPaths = unixPaths
