//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/browsertest"
)

// inBrowser renders the report page in headless Chromium: it draws
// something, holds want, logs nothing to its console and fetches nothing.
// It returns the screenshot.
func inBrowser(t *testing.T, page, want string) []byte {
	t.Helper()
	p := browsertest.RenderWith(t, page, browsertest.Options{Width: 1280, Height: 1400})
	require.True(t, browsertest.NotBlank(p.PNG), "the report draws something")
	require.Contains(t, p.DOM, want)
	require.Empty(t, p.Console, "the report logs nothing")
	require.Empty(t, p.Requests, "the report fetches nothing")
	return p.PNG
}

// TestReportHostLost: the report of 2,000 tasks over two hosts, one
// killed mid-run, shows the lost host's lanes ending early and its tasks
// run again on the other host.
func TestReportHostLost(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	page := filepath.Join(t.TempDir(), "report.html")
	input := strings.Repeat(`{"command":"sleep","args":["0.01"]}`+"\n", 2000)
	p := r.start(t, input, "-S", "4/h1,4/h2", "--ssh", r.ssh(), "--ndjson", "--report", page)
	for n := 0; n < 400; {
		if p.next().Host == "h1" {
			n++
		}
	}
	r.hosts.List[0].Kill()
	code, _ := p.wait()
	require.Equal(t, 0, code, p.stderr.String())
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	bars := reportBars(t, string(b))
	require.Len(t, bars, 2000)
	var endH1, endH2 float64
	moved := 0
	for _, bar := range bars {
		switch {
		case strings.Contains(bar.Title, " on h1:"):
			endH1 = max(endH1, bar.End)
			require.False(t, bar.Retried, "no task of h1 ran twice: %s", bar.Title)
		case strings.Contains(bar.Title, " on h2:"):
			endH2 = max(endH2, bar.End)
			if bar.Retried {
				moved++
				require.Contains(t, bar.Title, "attempt 2")
			}
		default:
			t.Fatalf("a bar of no host: %s", bar.Title)
		}
	}
	require.Positive(t, moved, "the tasks h1 was running ran again on h2, drawn as such")
	require.Less(t, endH1, endH2-100, "h1's lanes end well before h2's")
	require.Contains(t, string(b), ">h1</text>")
	require.Contains(t, string(b), ">h2</text>")
	png := inBrowser(t, page, ">h2</text>")
	// make report-png keeps the screenshot, for the README.
	if out := os.Getenv("WORKERPOOL_REPORT_PNG"); out != "" {
		require.NoError(t, os.WriteFile(out, png, 0o644))
	}
}
