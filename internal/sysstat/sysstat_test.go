package sysstat

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMeminfo(t *testing.T) {
	m, err := parseMeminfo([]byte("MemTotal:       16303888 kB\nMemFree:         1234567 kB\nMemAvailable:    8151944 kB\nBuffers: 1 kB\n"))
	require.NoError(t, err)
	require.Equal(t, Memory{Available: 8151944 << 10, Total: 16303888 << 10}, m)

	for text, want := range map[string]string{
		"MemTotal: 1 kB\n":                      "no MemAvailable and MemTotal in it",
		"MemTotal: x kB\nMemAvailable: 1 kB\n":  `MemTotal: "x" is not a size`,
		"MemTotal: 1 kB\nMemAvailable:\n":       "MemAvailable has no value",
		"MemTotal: -5 kB\nMemAvailable: 1 kB\n": `MemTotal: "-5" is not a size`,
	} {
		_, err := parseMeminfo([]byte(text))
		require.EqualError(t, err, want, text)
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	loadavg := filepath.Join(dir, "loadavg")
	require.NoError(t, os.WriteFile(loadavg, []byte("0.42 0.30 0.25 1/123 4567\n"), 0o644))
	load, err := ReadLoad(loadavg)
	require.NoError(t, err)
	require.Equal(t, 0.42, load)
	require.NoError(t, os.WriteFile(loadavg, []byte("busy\n"), 0o644))
	_, err = ReadLoad(loadavg)
	require.EqualError(t, err, loadavg+`: "busy" is not a load average`)

	meminfo := filepath.Join(dir, "meminfo")
	require.NoError(t, os.WriteFile(meminfo, []byte("MemTotal: 2048 kB\nMemAvailable: 1024 kB\n"), 0o644))
	m, err := ReadMemory(meminfo)
	require.NoError(t, err)
	require.Equal(t, Memory{Available: 1 << 20, Total: 2 << 20}, m)
}

// TestThisMachine: the system's own figures are there and make sense.
func TestThisMachine(t *testing.T) {
	m, err := ReadMemory("")
	require.NoError(t, err)
	require.Positive(t, m.Total)
	require.Positive(t, m.Available)
	require.LessOrEqual(t, m.Available, m.Total)

	load, err := ReadLoad("")
	if runtime.GOOS == "windows" {
		require.ErrorIs(t, err, ErrNoLoad)
		return
	}
	require.NoError(t, err)
	require.GreaterOrEqual(t, load, 0.0)
}
