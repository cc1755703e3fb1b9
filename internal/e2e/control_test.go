//go:build linux

package e2e

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
)

// needParallel skips the test when GNU parallel is not installed.
func needParallel(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not installed")
	}
	return path
}

// ended lists the words of the files named end-WORD in dir, sorted.
func ended(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "end-*"))
	require.NoError(t, err)
	var words []string
	for _, m := range matches {
		words = append(words, strings.TrimPrefix(filepath.Base(m), "end-"))
	}
	slices.Sort(words)
	return words
}

// TestHaltAsParallel runs the same tasks under each --halt through GNU
// parallel and through the pool, two at a time, and compares which tasks
// ran to their end and whether the run exited 0. Each input line is
// "WORD SECONDS STATUS": the task sleeps, marks its end, and exits with
// STATUS. Task 2 runs long beside the others, so that "now" stops it and
// "soon" lets it end.
func TestHaltAsParallel(t *testing.T) {
	parallel := needParallel(t)
	input := "1 0.2 1\n2 2 0\n3 0 1\n4 0 0\n5 0 1\n6 0 0\n"
	script := `set -- $1; sleep $2; touch end-$1; exit $3`
	for _, tc := range []struct {
		halt  string
		ended []string
	}{
		{"now,fail=1", []string{"1"}},
		{"soon,fail=1", []string{"1", "2"}},
		{"soon,fail=2", []string{"1", "2", "3"}},
		{"now,success=1", []string{"1", "3", "4"}},
		{"soon,success=1", []string{"1", "2", "3", "4"}},
		{"now,fail=50%", []string{"1", "3", "4", "5"}},
		{"never", []string{"1", "2", "3", "4", "5", "6"}},
	} {
		t.Run(tc.halt, func(t *testing.T) {
			theirs, ours := t.TempDir(), t.TempDir()
			pcode, _, pstderr := runIn(t, theirs, input, parallel, "-j2", "--halt", tc.halt, "-q", "sh", "-c", script, "sh", "{}")
			require.Equal(t, tc.ended, ended(t, theirs), "GNU parallel: %s", pstderr)
			code, stdout, stderr := runIn(t, ours, input, program, "--ndjson", "-j2", "--halt", tc.halt, "--grace", "1s", "--", "sh", "-c", script, "sh", "{}")
			require.Equal(t, tc.ended, ended(t, ours), "%s\n%s", stdout, stderr)
			require.Equal(t, pcode == 0, code == 0, "exit status: parallel %d, workerpool %d", pcode, code)
			if code != 0 {
				require.Equal(t, 1, code)
			}
			// Every task read has its result: run, stopped or skipped.
			results := ndjson[lineResult](t, stdout)
			require.Len(t, results, 6)
			for _, r := range results {
				word := strings.Fields(r.Identifier)[0]
				switch {
				case slices.Contains(tc.ended, word):
					require.Empty(t, r.Error, "task %s", word)
				case r.Error == "cancelled":
					require.True(t, strings.HasPrefix(tc.halt, "now"), "task %s stopped by %s", word, tc.halt)
				default:
					require.Contains(t, r.Error, "(--halt "+tc.halt+")", "task %s", word)
					require.Equal(t, -1, r.ExitCode)
				}
			}
		})
	}
}

// TestFailFastIsHaltSoon: --fail-fast is --halt soon,fail=1.
func TestFailFastIsHaltSoon(t *testing.T) {
	_, stdout, _ := runWith(t, "{\"command\":\"false\"}\n{\"command\":\"true\"}\n", program, "--ndjson", "-k", "-j1", "--fail-fast")
	results := ndjson[lineResult](t, stdout)
	require.Len(t, results, 2)
	require.Equal(t, "skipped after an earlier failure (--halt soon,fail=1)", results[1].Error)
}

type lineResult struct {
	Identifier string `json:"identifier"`
	ExitCode   int    `json:"exit_code"`
	Body       string `json:"result_body"`
	Error      string `json:"error"`
	Seq        int64  `json:"seq"`
}

// joblogLine is a joblog's line, split into its nine fields.
type joblogLine []string

// readJoblog reads the joblog at path, checks that each line has nine
// tab-separated fields, and returns its header and lines sorted by Seq.
func readJoblog(t *testing.T, path string) (header joblogLine, lines []joblogLine) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(l, "\t")
		require.Len(t, f, 9, "line %d: %q", i+1, l)
		if i == 0 {
			header = f
			continue
		}
		lines = append(lines, f)
	}
	slices.SortFunc(lines, func(a, b joblogLine) int { return strings.Compare(a[0], b[0]) })
	return header, lines
}

// TestJoblogAsParallel: the joblog has parallel's header and columns, and
// the same Seq, Host, Send, Receive, Exitval, Signal and Command as
// parallel's for the same tasks; its times are numbers with three
// decimals.
func TestJoblogAsParallel(t *testing.T) {
	parallel := needParallel(t)
	input := "a 0\nb 3\nkill 0\n"
	script := `set -- $1; echo "$1"; [ "$1" = kill ] && kill -9 $$; exit $2`
	theirs, ours := t.TempDir(), t.TempDir()
	runIn(t, theirs, input, parallel, "-j2", "--joblog", "jl", "-q", "sh", "-c", script, "sh", "{}")
	code, _, stderr := runIn(t, ours, input, program, "--raw", "-j2", "--joblog", "jl", "--", "sh", "-c", script, "sh", "{}")
	require.Equal(t, 1, code, stderr)
	pheader, plines := readJoblog(t, filepath.Join(theirs, "jl"))
	header, lines := readJoblog(t, filepath.Join(ours, "jl"))
	require.Equal(t, pheader, header)
	require.Len(t, lines, len(plines))
	for i, l := range lines {
		p := plines[i]
		for _, col := range []int{0, 1, 4, 5, 6, 7, 8} {
			require.Equal(t, p[col], l[col], "line %d, %s", i+1, header[col])
		}
		require.Regexp(t, `^\d+\.\d{3}$`, l[2])
		require.Regexp(t, `^ *\d+\.\d{3}$`, l[3])
	}
	require.Equal(t, []string{"0", "3", "0"}, []string{lines[0][6], lines[1][6], lines[2][6]})
	require.Equal(t, "9", lines[2][7])
}

// TestJoblogResume: --resume skips every task the joblog records, and
// --resume-failed only those that exited 0; each appends the lines of the
// tasks it runs. Tasks are matched by their Seq.
func TestJoblogResume(t *testing.T) {
	dir := t.TempDir()
	input := "ok1\nbad\nok2\n"
	script := `echo run >> "ran-$1"; [ "$1" != bad ] || [ -e fixed ]`
	run := func(flags ...string) int {
		args := append(append([]string{"--ndjson", "--joblog", "jl"}, flags...), "--", "sh", "-c", script, "sh", "{}")
		code, _, stderr := runIn(t, dir, input, program, args...)
		require.NotEqual(t, 2, code, stderr)
		return code
	}
	runs := func(word string) int {
		b, _ := os.ReadFile(filepath.Join(dir, "ran-"+word))
		return strings.Count(string(b), "run")
	}
	require.Equal(t, 1, run())
	_, lines := readJoblog(t, filepath.Join(dir, "jl"))
	require.Len(t, lines, 3)

	require.Equal(t, 0, run("--resume"), "nothing runs again")
	_, lines = readJoblog(t, filepath.Join(dir, "jl"))
	require.Len(t, lines, 3)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644))
	require.Equal(t, 0, run("--resume-failed"))
	require.Equal(t, []int{1, 2, 1}, []int{runs("ok1"), runs("bad"), runs("ok2")})
	_, lines = readJoblog(t, filepath.Join(dir, "jl"))
	require.Len(t, lines, 4)
	require.Equal(t, []string{"2", "0"}, []string{lines[2][0], lines[2][6]}, "the rerun's line")

	// Without a resume flag the joblog starts again.
	require.Equal(t, 0, run())
	_, lines = readJoblog(t, filepath.Join(dir, "jl"))
	require.Len(t, lines, 3)
}

// tree lists the files under dir, with their contents, but for the
// files named result.json and *.json, which parallel does not write.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(b)
		return err
	}))
	return files
}

// TestResultsAsParallel: --results lays out the same files as parallel's,
// with the same contents, for a directory and for a path with {} in it,
// and puts a result.json beside each task's. Nothing is written outside
// the directory, whatever the input lines hold.
func TestResultsAsParallel(t *testing.T) {
	parallel := needParallel(t)
	input := "a\nb/c\nd e\nx\\y\n"
	script := `echo "out $1"; echo "err $1" >&2`
	for _, spec := range []string{"res", "res/{}/out"} {
		t.Run(spec, func(t *testing.T) {
			theirs, ours := t.TempDir(), t.TempDir()
			runIn(t, theirs, input, parallel, "--results", spec, "-q", "sh", "-c", script, "sh", "{}")
			code, _, stderr := runIn(t, ours, input, program, "--ndjson", "--results", spec, "--", "sh", "-c", script, "sh", "{}")
			require.Equal(t, 0, code, stderr)
			want, got := tree(t, filepath.Join(theirs, "res")), tree(t, filepath.Join(ours, "res"))
			if spec != "res" {
				// parallel makes directories of the slashes that {} holds,
				// and leaves a backslash as it is; the pool escapes both
				// as parallel does in the directory layout.
				want = rename(want, strings.NewReplacer("b/c/", `b\_c/`, `x\y/`, `x\\y/`))
			}
			require.Equal(t, want, got)
			var res lineResult
			name := filepath.Join(ours, "res", "1", "b\\_c", "result.json")
			if spec != "res" {
				name = filepath.Join(ours, "res", "b\\_c", "out.json")
			}
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &res))
			require.Equal(t, "b/c", res.Identifier)
			require.Equal(t, "out b/c\n", res.Body)
		})
	}
	// With input sources, and with -N, a directory per value, under the
	// number of its source.
	for _, args := range [][]string{{"{1}", "{2}", ":::", "a", "b/c", ":::", "x"}, {"-N2", "sh", "-c", script, "sh", ":::", "a", "b", "c", "d"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			theirs, ours := t.TempDir(), t.TempDir()
			pargs, wargs := []string{"--results", "res", "-q"}, []string{"--ndjson", "--results", "res"}
			if args[0] == "-N2" {
				pargs, wargs = append(pargs[:2], "-N2", "-q"), append(wargs, "-N2", "--")
				args = args[1:]
			} else {
				pargs = append(pargs, "sh", "-c", script, "sh")
				wargs = append(wargs, "--", "sh", "-c", script, "sh")
			}
			runIn(t, theirs, "", parallel, append(pargs, args...)...)
			code, _, stderr := runIn(t, ours, "", program, append(wargs, args...)...)
			require.Equal(t, 0, code, stderr)
			want, got := tree(t, filepath.Join(theirs, "res")), tree(t, filepath.Join(ours, "res"))
			require.NotEmpty(t, want)
			require.Equal(t, want, got)
		})
	}
	t.Run("no way out", func(t *testing.T) {
		dir := t.TempDir()
		code, _, stderr := runIn(t, dir, "..\n.\n../x\n", program, "--ndjson", "--results", "res", "--", "true")
		require.Equal(t, 0, code, stderr)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		got := tree(t, filepath.Join(dir, "res"))
		require.Equal(t, "1", got[filepath.Join("1", `\..`, "seq")])
		require.Equal(t, "2", got[filepath.Join("1", `\.`, "seq")])
		require.Equal(t, "3", got[filepath.Join("1", `..\_x`, "seq")])
	})
}

// rename returns m with its keys rewritten by r.
func rename(m map[string]string, r *strings.Replacer) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[r.Replace(k)] = v
	}
	return out
}

// TestNice: the tasks run at the niceness --nice gives, and their
// children too.
func TestNice(t *testing.T) {
	code, stdout, stderr := runWith(t, "x\n", program, "--ndjson", "--nice", "7", "--", "sh", "-c", "nice; sh -c nice")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "7\n7\n", ndjson[lineResult](t, stdout)[0].Body)
	code, stdout, _ = runWith(t, "x\n", program, "--ndjson", "--", "sh", "-c", "nice")
	require.Equal(t, 0, code)
	require.Equal(t, "0\n", ndjson[lineResult](t, stdout)[0].Body, "without --nice, the pool's own")
}

// TestShuf: every task runs once, not in input order; -k writes the
// results in the order the tasks ran, as parallel does, and the array
// keeps input order.
func TestShuf(t *testing.T) {
	var input strings.Builder
	for i := range 100 {
		input.WriteString(strings.Repeat("x", i+1) + "\n")
	}
	order := filepath.Join(t.TempDir(), "order")
	code, stdout, stderr := runWith(t, input.String(), program, "--ndjson", "-k", "-j2", "--shuf", "--", "sh", "-c", `echo $1 >> "$0"`, order)
	require.Equal(t, 0, code, stderr)
	var seqs []int64
	var ids []string
	for _, r := range ndjson[lineResult](t, stdout) {
		seqs, ids = append(seqs, r.Seq), append(ids, r.Identifier)
	}
	ran, err := os.ReadFile(order)
	require.NoError(t, err)
	require.Len(t, strings.Fields(string(ran)), 100)
	require.Len(t, seqs, 100)
	require.False(t, slices.IsSorted(seqs), "not shuffled")
	require.Equal(t, 100, len(slices.Compact(slices.Sorted(slices.Values(seqs)))))
	require.ElementsMatch(t, strings.Fields(input.String()), ids, "every line once")

	code, stdout, _ = runWith(t, input.String(), program, "--shuf", "-j4", "--", "true")
	require.Equal(t, 0, code)
	var arr []lineResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &arr))
	require.Len(t, arr, 100)
	for i, r := range arr {
		require.Equal(t, int64(i+1), r.Seq)
	}
}

// TestLineBuffer: with --line-buffer, each line of a task's output is
// written as it comes, tagged, and lines of other tasks come between two
// of its lines, never inside one. The tasks wait for the test to have read
// a line before they go on, so the order is certain: "one" prints a line,
// then half of another; "two" prints a line in between; then "one" ends
// its line.
func TestLineBuffer(t *testing.T) {
	dir := t.TempDir()
	// wait FILE: until the test creates it, 20 s at most.
	script := `wait() { i=0; while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; }
		case $0 in
		one) echo first; wait read1; printf 'sec'; touch half; wait read2; echo 'ond' ;;
		two) wait half; echo between ;;
		esac`
	cmd := exec.Command(program, "--tag", "--line-buffer", "-j2", "--", "sh", "-c", script)
	cmd.Dir, cmd.Stdin = dir, strings.NewReader("one\ntwo\n")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := bufio.NewReader(stdout)
	next := func() string {
		l, err := lines.ReadString('\n')
		require.NoError(t, err)
		return l
	}
	require.Equal(t, "one\tfirst\n", next(), "a line as it comes, while its task runs")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "read1"), nil, 0o644))
	require.Equal(t, "two\tbetween\n", next(), "another task's line, while half a line of the first waits")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "read2"), nil, 0o644))
	require.Equal(t, "one\tsecond\n", next(), "the line whole")
	_, err = lines.ReadString('\n')
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, cmd.Wait())

	// Without it, each task's output comes whole as it ends.
	code, out, _ := runIn(t, dir, "a\nb\n", program, "--tag", "--", "sh", "-c", "echo 1; echo 2")
	require.Equal(t, 0, code)
	require.Contains(t, []string{"a\t1\na\t2\nb\t1\nb\t2\n", "b\t1\nb\t2\na\t1\na\t2\n"}, out)
}

// TestRemoteControl: on a host reached with -S, the tasks run at the
// niceness --nice gives (the agent is told it), the joblog names the host,
// and --halt now stops the task still running there.
func TestRemoteControl(t *testing.T) {
	r := newRig(t, hostSpec{true})
	t.Run("nice", func(t *testing.T) {
		code, results, stderr := r.run(t, `{"command":"sh","args":["-c","nice"]}`+"\n", "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--nice", "5")
		require.Equal(t, 0, code, stderr)
		require.Len(t, results, 1)
		require.Equal(t, "5\n", results[0].Body)
	})
	t.Run("joblog and halt", func(t *testing.T) {
		jl := filepath.Join(t.TempDir(), "jl")
		input := `{"identifier":"long","command":"sh","args":["-c","sleep 30"]}` + "\n" +
			`{"identifier":"fail","command":"sh","args":["-c","sleep 0.5; exit 3"]}` + "\n" + `{"command":"true"}` + "\n"
		code, results, stderr := r.run(t, input, "-S", "2/h1", "--ssh", r.ssh(), "--ndjson", "--halt", "now,fail=1", "--grace", "1s", "--joblog", jl)
		require.Equal(t, 1, code, stderr)
		require.Len(t, results, 3)
		byID := map[string]remoteResult{}
		for _, res := range results {
			byID[res.Identifier] = res
		}
		require.Equal(t, 3, byID["fail"].ExitCode)
		require.Equal(t, "cancelled", byID["long"].Error, "stopped on the host")
		require.Contains(t, byID["3"].Error, "skipped")
		_, lines := readJoblog(t, jl)
		require.Len(t, lines, 2, "the tasks that ran")
		for _, l := range lines {
			require.Equal(t, "h1", l[1])
		}
		noneLeft(t, r.hosts.List[0])
	})
}
