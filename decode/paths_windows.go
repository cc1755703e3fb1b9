package decode

// hostPaths split at "\" as well as at "/", since Windows names are written
// with either, and keep a drive's root whole. Parallel's rules know only
// "/"; they stay the rules in every other respect (a trailing separator, a
// name starting with a dot), so an item written with "/" and no drive
// expands alike on every system.
var hostPaths = windowsPaths
