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
