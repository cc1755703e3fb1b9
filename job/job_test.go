package job

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "1m30s", want: 90 * time.Second},
		{in: "2.5", want: 2500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "-1s", bad: true},
		{in: "-1", bad: true},
		{in: "soon", bad: true},
		{in: "1e300", bad: true}, // too long for a Duration
		{in: "NaN", bad: true},
		{in: "1e-12", bad: true}, // rounds to 0, which would mean no limit
		{in: "1ns", bad: true},
		{in: "0.0005", bad: true},
		{in: "0h0m0s", want: 0},
		{in: "1ms", want: time.Millisecond},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.bad {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}
