// Package sysstat reads how busy this machine is: the memory available
// and the load average, from the kernel, or from a file written in the
// form Linux gives them (/proc/meminfo, /proc/loadavg), which is how a
// container whose /proc does not tell its own limits (LXCFS), and tests,
// name another source.
package sysstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is what the machine has, in bytes.
type Memory struct {
	// Available is how much new work may take without swapping: Linux's
	// MemAvailable, or its nearest equivalent elsewhere.
	Available int64
	// Total is the machine's physical memory.
	Total int64
}

// ReadMemory reads the memory of this machine, or, when path is not
// empty, the file there, in the form of /proc/meminfo.
func ReadMemory(path string) (Memory, error) {
	if path == "" {
		return systemMemory()
	}
	return readMeminfo(path)
}

// ReadLoad reads the load average over the last minute of this machine,
// or, when path is not empty, the first number of the file there, in the
// form of /proc/loadavg. On a system that has none (Windows), it fails
// with ErrNoLoad.
func ReadLoad(path string) (float64, error) {
	if path == "" {
		return systemLoad()
	}
	return readLoadavg(path)
}

// ErrNoLoad says that the system keeps no load average.
var ErrNoLoad = errors.New("this system keeps no load average")

// readMeminfo reads MemAvailable and MemTotal from a file in the form of
// /proc/meminfo ("MemAvailable:   123456 kB").
func readMeminfo(path string) (Memory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, err
	}
	m, err := parseMeminfo(data)
	if err != nil {
		return Memory{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// parseMeminfo reads MemAvailable and MemTotal, both of which must be
// there, from the text of /proc/meminfo.
func parseMeminfo(data []byte) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		var dst *int64
		switch name {
		case "MemAvailable":
			dst = &m.Available
		case "MemTotal":
			dst = &m.Total
		}
		if !ok || dst == nil {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			return Memory{}, fmt.Errorf("%s has no value", name)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || n < 0 {
			return Memory{}, fmt.Errorf("%s: %q is not a size", name, fields[0])
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n <<= 10
		}
		*dst = n
		seen++
	}
	if seen < 2 {
		return Memory{}, errors.New("no MemAvailable and MemTotal in it")
	}
	return m, nil
}

// readLoadavg reads the first number of a file in the form of
// /proc/loadavg ("0.42 0.30 0.25 1/123 4567").
func readLoadavg(path string) (float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s: no load average in it", path)
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || load < 0 {
		return 0, fmt.Errorf("%s: %q is not a load average", path, fields[0])
	}
	return load, nil
}
