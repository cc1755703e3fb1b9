package encode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// readJournal reads the journal at path as a resumed run does.
func readJournal(t *testing.T, path string) (Journal, *Compaction) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	j, c, err := ReadJournal(f)
	require.NoError(t, err)
	return j, c
}

// TestReadJournal: the journal counts, by identifier, the results that ran
// to their end and exited 0; it ignores every other line, and removes a
// last line cut short.
func TestReadJournal(t *testing.T) {
	const whole = `{"identifier":"a","exit_code":0,"result_body":""}
{"identifier":"b","exit_code":1,"result_body":""}
{"identifier":"c","exit_code":0,"result_body":"","error":"cancelled"}
{"event":"started","identifier":"e","seq":5,"attempt":1}
not JSON

{"identifier":"d","exit_code":0}
{"identifier":"d","exit_code":0}
{"identifier":"f","exit_code":0,"result_body":"","seq":7,"duration_ms":1.5,"started_at":"2026-12-04T22:55:01.123Z","ended_at":"2026-12-04T22:55:01.124Z"}
`
	tests := []struct {
		name, file string
		want       Journal
		kept       string // the file once repaired
	}{
		{name: "whole lines", file: whole, want: Journal{"a": 1, "d": 2, "f": 1}, kept: whole},
		{name: "a torn last line", file: whole + `{"identifier":"t6","exit_co`, want: Journal{"a": 1, "d": 2, "f": 1}, kept: whole},
		{name: "a last line without its newline", file: `{"identifier":"a","exit_code":0}`, want: Journal{}, kept: ""},
		{name: "empty", file: "", want: Journal{}, kept: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.ndjson")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			j, _ := readJournal(t, path)
			require.Equal(t, tt.want, j)
			kept, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.kept, string(kept))
		})
	}
}

// TestJournalTake: the N recorded successes of an identifier stand for its
// first N tasks.
func TestJournalTake(t *testing.T) {
	j := Journal{"d": 2}
	require.True(t, j.Take("d"))
	require.True(t, j.Take("d"))
	require.False(t, j.Take("d"))
	require.False(t, j.Take("other"))
	require.False(t, Journal{}.Take("d"))
}

// TestJournalReadsWhatNDJSONWrites: every identifier the NDJSON writer
// writes, valid UTF-8 or not, is found again in the journal read back.
func TestJournalReadsWhatNDJSONWrites(t *testing.T) {
	ids := []string{"ok", "caf\xe9", "\xed\xa0\x80", "a\xe2\x82x", "\xef\xbf\xbd", "tab\tnew\nline"}
	results := make([]job.Result, len(ids))
	for i, id := range ids {
		results[i] = job.Result{Seq: int64(i + 1), Identifier: id, Started: true}
	}
	path := filepath.Join(t.TempDir(), "j.ndjson")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = Write(f, send(results...), Options{Mode: NDJSON{}})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	j, _ := readJournal(t, path)
	for _, id := range ids {
		require.True(t, j.Take(id), "identifier %q", id)
	}
	require.False(t, j.Take("caf\xe9"), "one result, one task")
}

// TestCompaction: compacting keeps the latest result of each identifier,
// or each of its successes, in the order written, and drops the lines
// that are not results; a compact journal drops nothing.
func TestCompaction(t *testing.T) {
	tests := []struct {
		name, file string
		kept       string
	}{
		{
			name: "reruns, events and other lines",
			file: `{"identifier":"a","exit_code":1,"n":1}
{"identifier":"b","exit_code":0,"n":2}
not JSON
{"event":"started","identifier":"a","seq":1,"attempt":1}
{"event":"retrying","identifier":"a","seq":1,"attempt":1,"exit_code":3,"error":"boom"}
{"identifier":"a","exit_code":2,"n":3}
{"exit_code":0}
{"identifier":"c","exit_code":0,"error":"cancelled","n":4}
{"identifier":"a","exit_code":0,"event":"finished","n":5}
{"identifier":"c","exit_code":1,"n":6}
`,
			kept: `{"identifier":"b","exit_code":0,"n":2}
{"identifier":"a","exit_code":0,"event":"finished","n":5}
{"identifier":"c","exit_code":1,"n":6}
`,
		},
		{
			name: "duplicate identifiers keep each success",
			file: `{"identifier":"d","exit_code":0,"n":1}
{"identifier":"d","exit_code":1,"n":2}
{"identifier":"d","exit_code":0,"n":3}
`,
			kept: `{"identifier":"d","exit_code":0,"n":1}
{"identifier":"d","exit_code":0,"n":3}
`,
		},
		{
			name: "compact already",
			file: `{"identifier":"a","exit_code":0}
{"identifier":"b","exit_code":1}
{"identifier":"caf\ufffd","exit_code":0}
`,
		},
		{name: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.ndjson")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			before, c := readJournal(t, path)
			kept := tt.kept
			if kept == "" {
				kept = tt.file
				require.Zero(t, c.Drops())
			} else {
				require.Equal(t, strings.Count(tt.file, "\n")-strings.Count(kept, "\n"), c.Drops())
			}
			var out strings.Builder
			require.NoError(t, c.Write(&out, strings.NewReader(tt.file)))
			require.Equal(t, kept, out.String())

			// The compacted journal says what the whole one said.
			require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
			after, c := readJournal(t, path)
			require.Equal(t, before, after)
			require.Zero(t, c.Drops(), "compact once compacted")
		})
	}
}
