package job

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDefaultsApply: a task's own time limit and limits win, "timeout": 0
// included; the run's fill in the rest.
func TestDefaultsApply(t *testing.T) {
	d := Defaults{Timeout: time.Minute, Limits: Limits{Files: 16, FSize: 1 << 20}}
	tests := []struct {
		name string
		task Task
		want Task
	}{
		{"none of its own", Task{}, Task{Timeout: time.Minute, Limits: d.Limits}},
		{"its own timeout wins", Task{Timeout: time.Second, HasTimeout: true},
			Task{Timeout: time.Second, HasTimeout: true, Limits: d.Limits}},
		{"its own no timeout wins", Task{HasTimeout: true}, Task{HasTimeout: true, Limits: d.Limits}},
		{"its own limits win", Task{Limits: Limits{Files: 20}}, Task{Timeout: time.Minute, Limits: Limits{Files: 20, FSize: 1 << 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.Apply(&tt.task)
			require.Equal(t, tt.want, tt.task)
		})
	}
}

// TestDefaultsApplyRequest: a task's own request wins, the run's fills in
// the rest; a memory request is the memory limit too, unless the task's
// own limits set one, and the run's limit applies only without one.
func TestDefaultsApplyRequest(t *testing.T) {
	d := Defaults{Request: Request{CPUs: 2, Memory: 1 << 30}, Limits: Limits{Memory: 512 << 20}}
	tests := []struct {
		name string
		task Task
		want Task
	}{
		{"none of its own", Task{}, Task{Request: d.Request, Limits: Limits{Memory: 1 << 30}}},
		{"its own request wins", Task{Request: Request{CPUs: 4, Memory: 2 << 30}},
			Task{Request: Request{CPUs: 4, Memory: 2 << 30}, Limits: Limits{Memory: 2 << 30}}},
		{"its own memory limit wins", Task{Limits: Limits{Memory: 64 << 20}},
			Task{Request: d.Request, Limits: Limits{Memory: 64 << 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.Apply(&tt.task)
			require.Equal(t, tt.want, tt.task)
		})
	}
	task := Task{}
	Defaults{Limits: Limits{Memory: 512 << 20}}.Apply(&task)
	require.Equal(t, Task{Limits: Limits{Memory: 512 << 20}}, task, "no request: the run's limit")
}

func TestRequestString(t *testing.T) {
	require.Equal(t, "1 cpu", Request{}.String())
	require.Equal(t, "3 cpus, 1.5 GiB of memory", Request{CPUs: 3, Memory: 3 << 29}.String())
	require.Equal(t, "512 B", FormatSize(512))
	require.Equal(t, "400.0 MiB", FormatSize(400<<20))
}
