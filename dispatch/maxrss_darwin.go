package dispatch

// maxRSSUnit is the unit of rusage's ru_maxrss in KiB: macOS counts bytes.
const maxRSSUnit = 1024
