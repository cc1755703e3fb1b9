//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reportBar is a bar of a report's timeline: its task's title, where it
// ends across, and how it is drawn.
type reportBar struct {
	End     float64
	Outcome string
	Retried bool
	Title   string
}

var barRE = regexp.MustCompile(`<rect x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)" height="10" class="(\w+)( retried)?"><title>([^<]*)</title>`)

// reportBars returns the bars of the report page.
func reportBars(t *testing.T, page string) []reportBar {
	t.Helper()
	var bars []reportBar
	for _, m := range barRE.FindAllStringSubmatch(page, -1) {
		x, err1 := strconv.ParseFloat(m[1], 64)
		w, err2 := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		bars = append(bars, reportBar{End: x + w, Outcome: m[3], Retried: m[4] != "", Title: m[5]})
	}
	return bars
}

// TestReport: --report writes the page of the run when it ends; the same
// page comes later from its results file, through workerpool report. The
// slowest task and the failed ones are listed, with the end of their
// stderr, and each task is a bar.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	results, page := filepath.Join(dir, "results.ndjson"), filepath.Join(dir, "report.html")
	input := `{"identifier":"slowpoke","command":"sleep","args":["0.4"]}` + "\n" +
		`{"identifier":"<b>bold</b>","command":"sh","args":["-c","echo 'it broke: <b>' >&2; exit 3"]}` + "\n" +
		strings.Repeat(`{"command":"sleep","args":["0.01"]}`+"\n", 40)
	code, _, stderr := runWith(t, input, program, "--ndjson", "-t", "4", "-o", results, "--report", page)
	require.Equal(t, 1, code, stderr)
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	html := string(b)
	require.Contains(t, html, `<td class="id">slowpoke <span class="note">#1</span></td>`, "the slowest task is listed")
	require.Contains(t, html, "&lt;b&gt;bold&lt;/b&gt;", "identifiers are text")
	require.Contains(t, html, "it broke: &lt;b&gt;", "with the end of its stderr")
	require.NotContains(t, html, "<b>bold")
	require.Len(t, reportBars(t, html), 42, "a bar a task")
	require.Contains(t, html, "<b>1</b>failed")

	code, later, stderr := runWith(t, "", program, "report", results)
	require.Equal(t, 0, code, stderr)
	require.Len(t, reportBars(t, later), 42, "the results file gives the same timeline")
	require.Contains(t, later, `<td class="id">slowpoke`)
	inBrowser(t, page, "slowpoke")

	code, _, stderr = runWith(t, "", program, "report", filepath.Join(dir, "missing.ndjson"))
	require.Equal(t, 2, code)
	require.Equal(t, "workerpool: cannot read "+filepath.Join(dir, "missing.ndjson")+": no such file or directory\n", stderr)
}

// TestReportInterrupted: a run stopped by SIGINT still writes its report,
// of the results it wrote.
func TestReportInterrupted(t *testing.T) {
	dir := t.TempDir()
	page, started := filepath.Join(dir, "report.html"), filepath.Join(dir, "started")
	cmd := exec.Command(program, "--ndjson", "-t", "2", "--report", page, "--", "sh", "-c", `: > "$0"; exec sleep 300`, started)
	cmd.Stdin = strings.NewReader("a\nb\nc\n")
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for _, err := os.Stat(started); err != nil && time.Now().Before(deadline); _, err = os.Stat(started) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	require.Error(t, err)
	require.Equal(t, 130, cmd.ProcessState.ExitCode())
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), "<b>3</b>tasks")
	require.Contains(t, string(b), "cancelled")
}

// TestReportUnwritable: a report that cannot be written is a usage error
// before any task runs.
func TestReportUnwritable(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	code, _, stderr := runWith(t, "x\n", program, "--ndjson", "--report", filepath.Join(dir, "no", "such", "r.html"), "--", "touch", ran)
	require.Equal(t, 2, code)
	require.Equal(t, "workerpool: cannot open --report "+filepath.Join(dir, "no", "such", "r.html")+": no such file or directory\n", stderr)
	require.NoFileExists(t, ran, "no task ran")
}
