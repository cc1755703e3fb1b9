package pipeline

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"a": "a", "b/c": `b\_c`, `x\y`: `x\\y`, "t\tz": `t\tz`, "n\x00": `n\0`,
		"": `\`, ".": `\.`, "..": `\..`, "../x": `..\_x`, "...": "...",
	} {
		require.Equal(t, want, escapeName(in), "%q", in)
	}
	long := strings.Repeat("é", 200) // 400 bytes
	got := escapeName(long)
	require.LessOrEqual(t, len(got), maxName)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasPrefix(long, got))
}
