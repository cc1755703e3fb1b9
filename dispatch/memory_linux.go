package dispatch

import (
	"bytes"
	"errors"
	"os"
	"strconv"
)

func availableMemory() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return memAvailable(b)
}

// memAvailable reads the MemAvailable line of /proc/meminfo, in kB.
func memAvailable(meminfo []byte) (int64, error) {
	for line := range bytes.Lines(meminfo) {
		rest, ok := bytes.CutPrefix(line, []byte("MemAvailable:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, errors.New("/proc/meminfo: MemAvailable is not a number of kB")
		}
		return kb << 10, nil
	}
	return 0, errors.New("/proc/meminfo has no MemAvailable")
}
