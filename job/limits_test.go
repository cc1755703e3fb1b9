package job

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  string // part of the error, when the size is refused
	}{
		{in: "0", want: 0},
		{in: "0K", want: 0},
		{in: "0.0M", want: 0},
		{in: "1", want: 1},
		{in: " 512 ", want: 512},
		{in: "512B", want: 512},
		{in: "1K", want: 1 << 10},
		{in: "1k", want: 1 << 10},
		{in: "1KB", want: 1 << 10},
		{in: "1kib", want: 1 << 10},
		{in: "1 K", want: 1 << 10},
		{in: "512M", want: 512 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "1G", want: 1 << 30},
		{in: "2T", want: 2 << 40},
		{in: "1P", want: 1 << 50},
		{in: "1.5K", want: 1536},
		{in: "1.50K", want: 1536},
		{in: "0.5K", want: 512},
		{in: "0.0009765625K", want: 1},
		{in: "1.25G", want: 5 << 28},
		{in: "007", want: 7},
		{in: "+1", want: 1},
		{in: ".5K", want: 512},
		{in: "1.", want: 1},
		{in: "1e9", want: 1e9},
		{in: "1.5E+3", want: 1500},
		{in: "1000000000.0", want: 1e9}, // as a JSON float
		{in: "5e-1K", want: 512},
		{in: "9.765625e-4K", want: 1},
		{in: "0e999999999999999999999", want: 0},
		{in: "0.000e-5", want: 0},
		{in: "4096P", want: 1 << 62},
		{in: "4611686018427387903", want: 1<<62 - 1},     // not rounded through a float64
		{in: "9223372036854775807", want: math.MaxInt64}, // the largest
		{in: "8191.999999999999999999999999999999999999999999999999P", bad: "whole number"},
		{in: "0.0001", bad: "whole number"}, // would round to 0, no limit
		{in: "1e-3", bad: "whole number"},
		{in: "2e-1K", bad: "whole number"},
		{in: "1e-999999999999999999999", bad: "whole number"},
		{in: "1e19", bad: "largest size"},
		{in: "1e400", bad: "largest size"},
		{in: "1e999999999999999999999", bad: "largest size"},
		{in: "0.00000000000000000000000000000000000000000000000000000000000000001e84", bad: "largest size"},
		{in: "0.5", bad: "whole number"},
		{in: "1.1K", bad: "whole number"},
		{in: "1.0000000000000000000000000000000000000000000000000001P", bad: "whole number"},
		{in: "9223372036854775808", bad: "largest size"},
		{in: "8192P", bad: "largest size"},
		{in: "8388608T", bad: "largest size"},
		{in: "100000000000000000000", bad: "largest size"},
		{in: "", bad: "not a size"},
		{in: "K", bad: "not a size"},
		{in: "-1", bad: "not a size"},
		{in: "1.2.3", bad: "not a size"},
		{in: ".", bad: "not a size"},
		{in: "-0", bad: "not a size"},
		{in: "1e", bad: "not a size"},
		{in: "1e+", bad: "not a size"},
		{in: "1 e9", bad: "not a size"},
		{in: "1Ki", bad: "not a size"},
		{in: "0x10", bad: "not a size"},
		{in: "1_000", bad: "not a size"},
		{in: "Inf", bad: "not a size"},
		{in: "NaN", bad: "not a size"},
		{in: "1E", bad: "not a size"},
		{in: "1X", bad: "not a size"},
		{in: "1i", bad: "not a size"},
		{in: "1  K", bad: "not a size"},
		{in: "1KK", bad: "not a size"},
		{in: "١", bad: "not a size"}, // a digit, but not an ASCII one
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.bad != "" {
				require.ErrorContains(t, err, tc.bad)
				require.ErrorContains(t, err, `"`+tc.in+`"`, "the error names the size")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0}, // none
		{in: "4M", want: MinMemory},
		{in: "4194304", want: MinMemory},
		{in: "1G", want: 1 << 30},
		{in: "1", bad: true},
		{in: "4194303", bad: true},
		{in: "3.5M", bad: true},
		{in: "0.0001", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMemory(tc.in)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := ParseMemory("1")
	require.EqualError(t, err, `"1" is below the smallest memory limit, 4M`)
}

func TestLimitsCheck(t *testing.T) {
	require.NoError(t, Limits{}.Check())
	require.NoError(t, Limits{Memory: MinMemory, Files: 1, FSize: 1}.Check())
	require.EqualError(t, Limits{Memory: 1}.Check(), "limit memory 1 is below the smallest memory limit, 4M")
}
