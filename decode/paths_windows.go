package decode

// hostPaths split at "\" as well as at "/", since Windows names are written
// with either, and keep a drive's root whole. Parallel's rules know only
// "/"; they stay the rules in every other respect (a trailing separator, a
// name starting with a dot), so an item written with "/" and no drive
// expands alike on every system.
var hostPaths = windowsPaths

// MaxCommandLine is the most bytes that -X puts in a task's command line
// (see Args.Fit). Windows takes a command line of 32,767 UTF-16 code
// units, with each argument quoted; half of that leaves room for the
// quotes and for escaped quotes in the arguments.
const MaxCommandLine = 16 << 10
