package job

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// memSpill is a Spill in memory that counts how often it is closed.
type memSpill struct {
	*strings.Reader
	closed int
}

func (m *memSpill) Close() error { m.closed++; return nil }

// TestOutput: an output is its head, then its spill, however many times it
// is read; the zero output holds nothing; closing an output closes its
// spill.
func TestOutput(t *testing.T) {
	tail := &memSpill{Reader: strings.NewReader("tail")}
	tests := []struct {
		name  string
		out   Output
		want  string
		spill *memSpill
	}{
		{"the zero output", Output{}, "", nil},
		{"in memory", BytesOutput([]byte("head")), "head", nil},
		{"spilled", NewOutput([]byte("head-"), tail), "head-tail", tail},
		{"all spilled", NewOutput(nil, &memSpill{Reader: strings.NewReader("tail")}), "tail", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, int64(len(tt.want)), tt.out.Len())
			for range 2 {
				b, err := io.ReadAll(tt.out.Reader())
				require.NoError(t, err)
				require.Equal(t, tt.want, string(b))
			}
			require.Equal(t, tt.want, tt.out.String())
			require.NoError(t, tt.out.Close())
			if tt.spill != nil {
				require.Equal(t, 1, tt.spill.closed)
			}
		})
	}
}
