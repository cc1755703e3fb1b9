package decode

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFileNames: the names of the files a task stages take the
// replacement strings of its command: one name per argument for {} when
// a task has several, positional strings, and a name without one as it
// is. JSON tasks get the names as they are.
func TestFileNames(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		opts     Options
		transfer [][]string
		ret      [][]string
	}{
		{"one item", "a.txt\nsub/b.log\n", Options{Template: []string{"gzip", "{}"}, Transfer: []string{"{}", "shared.cfg"}, Return: []string{"{.}.gz", "{#}.out"}},
			[][]string{{"a.txt", "shared.cfg"}, {"sub/b.log", "shared.cfg"}}, [][]string{{"a.gz", "1.out"}, {"sub/b.gz", "2.out"}}},
		{"two items a task", "a\nb\nc\n", Options{Template: []string{"cat"}, Args: Args{MaxArgs: 2}, Transfer: []string{"{}"}, Return: []string{"{1}.out"}},
			[][]string{{"a", "b"}, {"c"}}, [][]string{{"a.out"}, {"c.out"}}},
		{"JSON tasks", `{"command":"true"}` + "\n", Options{Transfer: []string{"in.txt"}, Return: []string{"out.txt"}},
			[][]string{{"in.txt"}}, [][]string{{"out.txt"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeAll(t, strings.NewReader(tt.input), tt.opts)
			require.NoError(t, err)
			require.Len(t, tasks, len(tt.transfer))
			for i, task := range tasks {
				require.NoError(t, task.Err)
				require.Equal(t, tt.transfer[i], task.Transfer, "task %d", i+1)
				require.Equal(t, tt.ret[i], task.Return, "task %d", i+1)
			}
		})
	}
}
