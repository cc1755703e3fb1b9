//go:build unix && !darwin

package dispatch

// maxRSSUnit is the unit of rusage's ru_maxrss in KiB: KiB already.
const maxRSSUnit = 1
