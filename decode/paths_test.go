package decode

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pathCase is an item and what GNU parallel makes of it.
type pathCase struct{ item, base, dir, noExt, baseNoExt string }

// parallelPaths are the expansions of {/}, {//}, {.} and {/.} that GNU
// parallel 20221122 gives, recorded from its own output:
//
//	printf '%s\0' ITEM... | parallel -0 -k -q printf '%s\0%s\0%s\0%s\0%s\0' {} {/} {//} {.} {/.}
var parallelPaths = []pathCase{
	{"a/", "", ".", "a/", ""},
	{"/a/b/", "", "/a", "/a/b/", ""},
	{"/", "", "/", "/", ""},
	{"//", "", "/", "//", ""},
	{"///", "", "/", "///", ""},
	{".", ".", ".", "", ""},
	{"..", "..", ".", ".", "."},
	{"./", "", ".", "./", ""},
	{"../x", "x", "..", "../x", "x"},
	{"a.b/", "", ".", "a.b/", ""},
	{".hidden", ".hidden", ".", "", ""},
	{"dir/.x", ".x", "dir", "dir/", ""},
	{"a/b.c.d", "b.c.d", "a", "a/b.c", "b.c"},
	{"a//b", "b", "a", "a//b", "b"},
	{"a/b//", "", "a", "a/b//", ""},
	{"//a", "a", "/", "//a", "a"},
	{"/a", "a", "/", "/a", "a"},
	{"a", "a", ".", "a", "a"},
	{"a b/c.d", "c.d", "a b", "a b/c", "c"},
	{"a.", "a.", ".", "a", "a"},
	{".a.b", ".a.b", ".", ".a", ".a"},
	{"x/.", ".", "x", "x/", ""},
	{"x/..", "..", "x", "x/.", "."},
	{"a.b.c/d", "d", "a.b.c", "a.b.c/d", "d"},
	{"src/app/main.tar.gz", "main.tar.gz", "src/app", "src/app/main.tar", "main.tar"},
	{" a/b ", "b ", " a", " a/b ", "b "},
	{`a\b.c`, `a\b.c`, ".", `a\b`, `a\b`},
	{"dir/", "", ".", "dir/", ""},
	{"a/b/c/", "", "a/b", "a/b/c/", ""},
	{"a.b/c", "c", "a.b", "a.b/c", "c"},
	{"/.x", ".x", "/", "/", ""},
	{"é/ü.ñ", "ü.ñ", "é", "é/ü", "ü"},
	// With -0 an item may hold newlines: {/} looks for a "/" line by line.
	{"a/b\nc/d", "b\nc/d", "a/b\nc", "a/b\nc/d", "b\nc/d"},
	{"x\ny/", "x\n", ".", "x\ny/", "x\n"},
	{"a.b\nc", "a.b\nc", ".", "a", "a"},
	{"p/q.r\n", "q.r\n", "p", "p/q", "q"},
	{"a/\nb.c", "\nb.c", "a", "a/\nb", "\nb"},
	{"\n", "\n", ".", "\n", "\n"},
	{"a\n/", "a\n", ".", "a\n/", "a\n"},
}

// pathTemplate expands the four path strings, one argument each.
var pathTemplate = []string{"echo", "{/}", "{//}", "{.}", "{/.}"}

// expandPaths runs items, NUL-separated, through pathTemplate and returns
// the arguments of each task.
func expandPaths(t *testing.T, items []string) [][]string {
	t.Helper()
	input := strings.Join(items, "\x00") + "\x00"
	tasks, err := decodeAll(t, strings.NewReader(input), Options{Template: pathTemplate, Null: true})
	require.NoError(t, err)
	require.Len(t, tasks, len(items))
	args := make([][]string, len(tasks))
	for i, task := range tasks {
		require.NoError(t, task.Err)
		args[i] = task.Args
	}
	return args
}

// TestPathStrings checks {/}, {//}, {.} and {/.} against the values GNU
// parallel gives for the same items: trailing slashes, roots, dot names,
// several extensions and newlines in an item.
func TestPathStrings(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip(`on Windows "\" separates directories too, which parallel's rules do not know (see TestWindowsPathRules)`)
	}
	items := make([]string, len(parallelPaths))
	for i, c := range parallelPaths {
		items[i] = c.item
	}
	for i, args := range expandPaths(t, items) {
		c := parallelPaths[i]
		require.Equal(t, []string{c.base, c.dir, c.noExt, c.baseNoExt}, args, "item %q", c.item)
	}
}

// TestPathRulesOfAnEmptyItem covers the one item the decoder never expands
// (an empty item is no task), with parallel's values for it.
func TestPathRulesOfAnEmptyItem(t *testing.T) {
	for _, rules := range []*pathRules{unixPaths, windowsPaths} {
		require.Equal(t, "", rules.base(""))
		require.Equal(t, ".", rules.dir(""))
		require.Equal(t, "", rules.noExt(""))
	}
}

// TestWindowsPathRules: on Windows "\" separates directories as "/" does,
// and a drive's root stays whole; an item written with "/" and no drive
// expands as parallel expands it.
func TestWindowsPathRules(t *testing.T) {
	for _, c := range []pathCase{
		{`C:\a\b.txt`, "b.txt", `C:\a`, `C:\a\b`, "b"},
		{`C:\x`, "x", `C:\`, `C:\x`, "x"},
		{`C:\`, "", `C:\`, `C:\`, ""},
		{`C:/x/`, "", `C:/`, `C:/x/`, ""},
		{`a\b\`, "", "a", `a\b\`, ""},
		{`a/b\c.d`, "c.d", "a/b", `a/b\c`, "c"},
		{`a.b\c`, "c", "a.b", `a.b\c`, "c"},
		{`\\server\share\f.txt`, "f.txt", `\\server\share`, `\\server\share\f`, "f"},
		{`\`, "", `\`, `\`, ""},
	} {
		require.Equal(t, []string{c.base, c.dir, c.noExt, c.baseNoExt}, windowsPaths.expand(c.item), "item %q", c.item)
	}
	for _, c := range parallelPaths {
		if strings.Contains(c.item, `\`) {
			continue
		}
		require.Equal(t, []string{c.base, c.dir, c.noExt, c.baseNoExt}, windowsPaths.expand(c.item), "item %q", c.item)
	}
}

// TestPathStringsAgainstParallel runs GNU parallel, when it is on PATH, on
// the items of parallelPaths and a few more, and compares its expansions
// with the decoder's byte for byte.
func TestPathStringsAgainstParallel(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip(`on Windows "\" separates directories too, which parallel's rules do not know`)
	}
	parallel, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not on PATH, so its expansions cannot be compared; TestPathStrings holds values recorded from it")
	}
	if out, err := exec.Command(parallel, "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU parallel")) {
		t.Skipf("%s is not GNU parallel (--version: %v), so its expansions cannot be compared", parallel, err)
	}
	items := []string{"\xff/\xfe.\xfd", "a.b.c.d/e.f.g", "-", "~/x.y/", "a/./b/../c.", " ", "\t/\t.\t", "{}/{.}", "a\r", "a/b\r\n"}
	for _, c := range parallelPaths {
		items = append(items, c.item)
	}

	cmd := exec.Command(parallel, "-0", "-k", "-q", "printf", `%s\0%s\0%s\0%s\0`, "{/}", "{//}", "{.}", "{/.}")
	cmd.Stdin = strings.NewReader(strings.Join(items, "\x00") + "\x00")
	// A user's configuration and $PARALLEL options must not change what
	// parallel does here.
	cmd.Env = append(withoutVar(os.Environ(), "PARALLEL"), "PARALLEL_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	require.NoError(t, err, "parallel: %s", stderr.Bytes())

	words := strings.Split(string(want), "\x00")
	require.Len(t, words, 4*len(items)+1, "parallel's output: four words for each item")
	for i, args := range expandPaths(t, items) {
		require.Equal(t, words[4*i:4*i+4], args, "{/} {//} {.} {/.} of item %q, as parallel and as the decoder expand them", items[i])
	}
}

// expand returns {/}, {//}, {.} and {/.} of item under r.
func (r *pathRules) expand(item string) []string {
	return []string{r.base(item), r.dir(item), r.noExt(item), r.noExt(r.base(item))}
}

// withoutVar returns env without the variable name.
func withoutVar(env []string, name string) []string {
	kept := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			kept = append(kept, kv)
		}
	}
	return kept
}
