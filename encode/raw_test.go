package encode

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestRaw: each task's stdout is written as it is, its stderr goes to
// RawStderr, and with Tag every line of either starts with the identifier
// and a tab.
func TestRaw(t *testing.T) {
	results := func() <-chan job.Result {
		first := result(1, "one\ntwo\n")
		first.Stderr = job.BytesOutput([]byte("warn\n"))
		return send(first, result(2, "three"))
	}
	tests := []struct {
		name           string
		mode           Raw
		stdout, stderr string
	}{
		{"as it is", Raw{}, "one\ntwo\nthree", "warn\n"},
		{"tagged", Raw{Tag: true}, "t1\tone\nt1\ttwo\nt2\tthree", "t1\twarn\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			sum, err := Write(&stdout, results(), Options{Mode: tt.mode, RawStderr: &stderr})
			require.NoError(t, err)
			require.Equal(t, Summary{Results: 2}, sum)
			require.Equal(t, tt.stdout, stdout.String())
			require.Equal(t, tt.stderr, stderr.String())
		})
	}
}
