package job

import (
	"fmt"
	"strconv"
)

// Request is the room a task takes while it runs: it starts only where
// that much is free, and holds it until it ends.
type Request struct {
	// CPUs is the number of slots the task occupies; 0 means 1.
	CPUs int
	// Memory is the memory in bytes reserved for the task; 0 reserves
	// none.
	Memory int64
}

// The names of the resources a task waits for, as the "waiting" event and
// the task's fields say them.
const (
	ResourceCPUs   = "cpus"
	ResourceMemory = "memory"
)

// String says what r asks for: "2 cpus, 400 MiB of memory".
func (r Request) String() string {
	s := strconv.Itoa(r.CPUs) + " cpus"
	if r.CPUs <= 1 {
		s = "1 cpu"
	}
	if r.Memory > 0 {
		s += ", " + FormatSize(r.Memory) + " of memory"
	}
	return s
}

// FormatSize writes a size in bytes for people to read: in the largest
// unit of 1024 in which it is at least 1, with one decimal ("1.5 GiB").
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, u := float64(n)/1024, 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[u])
}
