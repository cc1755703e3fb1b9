//go:build !windows

package decode

// hostPaths are GNU parallel's rules: "/" separates directories, and a
// backslash is an ordinary byte of a name.
var hostPaths = unixPaths

// MaxCommandLine is the most bytes that -X puts in a task's command line,
// each argument counted with the NUL that ends it (see Args.Fit): 128
// KiB, as xargs uses by default. Every system the pool runs on takes that
// much, beside an environment of ordinary size.
const MaxCommandLine = 128 << 10
