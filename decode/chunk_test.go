package decode

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// stdins returns the stdin of each task, and checks that each task is a
// chunk numbered in order, whose place in the input follows the last.
func stdins(t *testing.T, tasks []job.Task) []string {
	t.Helper()
	out := make([]string, 0, len(tasks))
	var offset int64
	for i, task := range tasks {
		require.NoError(t, task.Err)
		n := strconv.Itoa(i + 1)
		require.Equal(t, n, task.Identifier, "a chunk's identifier is its number")
		require.Equal(t, "chunk "+n, task.Where)
		require.True(t, task.HasStdin)
		require.NotNil(t, task.Chunk)
		require.Equal(t, offset, task.Chunk.Offset, "chunk %d", i+1)
		require.Equal(t, int64(len(task.Stdin)), task.Chunk.Length, "chunk %d", i+1)
		offset += task.Chunk.Length
		out = append(out, task.Stdin)
	}
	return out
}

// TestPipeChunks cuts streams as GNU parallel's --pipe does: up to the
// block, after the last whole record, the rest at the end of the input.
func TestPipeChunks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		pipe  Pipe
		want  []string
	}{
		{"lines", "1\n2\n3\n4\n5\n", Pipe{Block: 4, RecEnd: "\n"}, []string{"1\n2\n", "3\n4\n", "5\n"}},
		{"a line cut by the block goes to the next chunk", "1\n22\n3\n", Pipe{Block: 4, RecEnd: "\n"}, []string{"1\n", "22\n", "3\n"}},
		{"the last line without its end", "1\n2\n3", Pipe{Block: 4, RecEnd: "\n"}, []string{"1\n2\n", "3"}},
		{"a record longer than the block is one chunk, whole", "aaaaaaaaaa\nb\n", Pipe{Block: 4, RecEnd: "\n"}, []string{"aaaaaaaaaa\n", "b\n"}},
		{"an input without a record end is one chunk", "abcdefghij", Pipe{Block: 3, RecEnd: "\n"}, []string{"abcdefghij"}},
		{"recend", "a;b;c;d", Pipe{Block: 3, RecEnd: ";"}, []string{"a;", "b;", "c;", "d"}},
		{"recstart", ">a\nx\n>b\ny\n>c\n", Pipe{Block: 6, RecStart: ">"}, []string{">a\nx\n", ">b\ny\n", ">c\n"}},
		{"recend then recstart", "a.\n>b.\n.>c.\n>d", Pipe{Block: 6, RecStart: ">", RecEnd: ".\n"}, []string{"a.\n", ">b.\n.>c.\n>d"}},
		{"records anywhere", "abcdefg", Pipe{Block: 3}, []string{"abc", "def", "g"}},
		{"-L 2", "1\n2\n3\n4\n5\n", Pipe{Block: 5, Lines: 2, RecEnd: "\n"}, []string{"1\n2\n", "3\n4\n", "5\n"}},
		{"-L 3, records longer than the block", "1\n2\n3\n4\n5\n6\n7\n", Pipe{Block: 4, Lines: 3, RecEnd: "\n"}, []string{"1\n2\n3\n", "4\n5\n6\n", "7\n"}},
		{"-L at the end of the input", "1\n2\n3\n4\n5", Pipe{Block: 100, Lines: 2, RecEnd: "\n"}, []string{"1\n2\n3\n4\n", "5"}},
		{"no input", "", Pipe{Block: 4, RecEnd: "\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, err := decodeAll(t, strings.NewReader(tc.input), Options{Template: []string{"cat"}, Pipe: &tc.pipe})
			require.NoError(t, err)
			got := stdins(t, tasks)
			if tc.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestPipeChunksWhole cuts a longer input in many ways: the chunks, put
// together, are the input, and every chunk but the last ends a record.
func TestPipeChunksWhole(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(">" + strconv.Itoa(i) + strings.Repeat("x", i%97) + "\n")
	}
	input := b.String()
	for _, p := range []Pipe{
		{Block: 1, RecEnd: "\n"}, {Block: 100, RecEnd: "\n"}, {Block: 4096, RecEnd: "\n"}, {Block: 1 << 20, RecEnd: "\n"},
		{Block: 300, RecStart: ">"}, {Block: 300, RecStart: ">", RecEnd: "\n"}, {Block: 1000, Lines: 7, RecEnd: "\n"},
		{Block: 77},
	} {
		t.Run(strconv.FormatInt(p.Block, 10), func(t *testing.T) {
			tasks, err := decodeAll(t, strings.NewReader(input), Options{Template: []string{"cat"}, Pipe: &p})
			require.NoError(t, err)
			chunks := stdins(t, tasks)
			require.Equal(t, input, strings.Join(chunks, ""))
			for i, c := range chunks[:len(chunks)-1] {
				if p.Lines > 0 {
					require.Zero(t, strings.Count(c, "\n")%p.Lines, "chunk %d holds whole records of %d lines", i+1, p.Lines)
				}
				if p.RecStart != "" {
					require.True(t, strings.HasPrefix(chunks[i+1], p.RecStart), "chunk %d starts a record", i+2)
				}
				require.True(t, strings.HasSuffix(c, p.RecEnd), "chunk %d ends a record", i+1)
			}
		})
	}
}

// TestPipeTemplate fills the template of a chunk's task: {#} and {%} as
// for lines, {} with nothing, and nothing is appended.
func TestPipeTemplate(t *testing.T) {
	tasks, err := decodeAll(t, strings.NewReader("a\nb\n"), Options{
		Template: []string{"sh", "-c", "n={#} x={}", "{%}"}, Pipe: &Pipe{Block: 2, RecEnd: "\n"}})
	require.NoError(t, err)
	require.Len(t, tasks, 2)
	require.Equal(t, "sh", tasks[1].Command)
	require.Equal(t, []string{"-c", "n=2 x=", "1"}, tasks[1].Args)
	require.NotNil(t, tasks[1].SlotWords, "{%} is filled in when the task runs")

	tasks, err = decodeAll(t, strings.NewReader("a\n"), Options{Template: []string{"wc", "-l"}, Pipe: &Pipe{Block: 2, RecEnd: "\n"}})
	require.NoError(t, err)
	require.Equal(t, []string{"-l"}, tasks[0].Args, "the chunk is stdin, not an argument")
}

// TestPipePart finds the chunks of a file as GNU parallel's --pipepart
// does: each ends at the first boundary at or past its start plus the
// block, and the tasks read them from the file.
func TestPipePart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		return path
	}
	// A separator that spans two of the windows find reads.
	long := strings.Repeat("x", findWindow-2) + "<end>" + "tail<end>" + "rest"
	for _, tc := range []struct {
		name    string
		content string
		pipe    Pipe
		want    []string
	}{
		{"lines", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", Pipe{Block: 4, RecEnd: "\n"}, []string{"1\n2\n3\n", "4\n5\n6\n", "7\n8\n9\n", "10\n"}},
		{"a block on a boundary takes the next record too", "ab\ncd\nef\n", Pipe{Block: 3, RecEnd: "\n"}, []string{"ab\ncd\n", "ef\n"}},
		{"no boundary past the block", "abc\ndefghijkl", Pipe{Block: 5, RecEnd: "\n"}, []string{"abc\ndefghijkl"}},
		{"recstart", ">a\n>b\n>c\n", Pipe{Block: 2, RecStart: ">"}, []string{">a\n", ">b\n", ">c\n"}},
		{"records anywhere", "abcdefg", Pipe{Block: 3}, []string{"abc", "def", "g"}},
		{"a separator across reads", long, Pipe{Block: 1, RecEnd: "<end>"}, []string{long[:findWindow+3], "tail<end>", "rest"}},
		{"an empty file", "", Pipe{Block: 3, RecEnd: "\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tc.name, " ", "_"), tc.content)
			tc.pipe.Part = path
			tasks, err := decodeAll(t, strings.NewReader("not read"), Options{Template: []string{"cat"}, Pipe: &tc.pipe})
			require.NoError(t, err)
			var got []string
			var offset int64
			for i, task := range tasks {
				require.NoError(t, task.Err)
				require.Equal(t, strconv.Itoa(i+1), task.Identifier)
				require.True(t, task.HasStdin)
				require.Empty(t, task.Stdin, "the task reads its chunk from the file")
				require.Equal(t, job.Chunk{Path: path, Offset: offset, Length: task.Chunk.Length}, *task.Chunk)
				offset += task.Chunk.Length
				got = append(got, tc.content[task.Chunk.Offset:offset])
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestPipePartNotAFile reports an input that cannot be cut by offsets.
func TestPipePartNotAFile(t *testing.T) {
	_, err := decodeAll(t, strings.NewReader(""), Options{Template: []string{"cat"}, Pipe: &Pipe{Block: 3, RecEnd: "\n", Part: t.TempDir()}})
	require.ErrorContains(t, err, "is not one")
	_, err = decodeAll(t, strings.NewReader(""), Options{Template: []string{"cat"}, Pipe: &Pipe{Block: 3, RecEnd: "\n", Part: filepath.Join(t.TempDir(), "none")}})
	require.ErrorContains(t, err, "no such file")
}
