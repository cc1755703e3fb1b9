//go:build linux

package browsertest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/workerpool/workerpool/internal/testlab"
)

// run is one start of Chromium, as onStart saw it.
type run struct {
	pgid int
	mark string
}

var (
	runsMu  sync.Mutex
	runList []run
	// watch, when not nil, is called with each run as it starts.
	watch func(run)
)

func init() {
	onStart = func(pgid int, mark string) {
		runsMu.Lock()
		defer runsMu.Unlock()
		runList = append(runList, run{pgid, mark})
		if watch != nil {
			watch(run{pgid, mark})
		}
	}
}

// runs returns the runs of Chromium so far.
func runs() []run {
	runsMu.Lock()
	defer runsMu.Unlock()
	return append([]run(nil), runList...)
}

// writePage writes html to a file in a temporary directory and returns its
// path.
func writePage(t *testing.T, name, html string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(html), 0o644))
	return path
}

// needBrowser skips the test when there is no browser, so that a test
// that starts something before Render skips before it does.
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := Find(); err != nil {
		t.Skipf("browsertest: no Chromium found (install Debian's chromium): %v", err)
	}
}

// nothingLeft fails the test if the test binary has a child process left,
// or a run of Chromium a process: one in its process group, or one that
// carries its mark.
func nothingLeft(t *testing.T) {
	t.Helper()
	for _, r := range runs() {
		assert.Empty(t, processes(r.pgid, r.mark), "processes of Chromium %d left", r.pgid)
	}
	self := os.Getpid()
	deadline := time.Now().Add(waitLimit)
	for {
		var kids []string
		for pid, p := range testlab.Procs() {
			if p.PPid == self {
				kids = append(kids, fmt.Sprintf("%d (%s)", pid, p.Comm))
			}
		}
		if len(kids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("child processes left: %v", kids)
			return
		}
		time.Sleep(pollEvery)
	}
}

const chartPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>chart</title>
<style>body { font: 16px sans-serif; margin: 20px } h1 { color: #234 }</style></head>
<body><h1>Run report</h1>
<svg width="400" height="200" viewBox="0 0 400 200">
<rect x="10" y="20" width="80" height="170" fill="#3366cc"/>
<rect x="110" y="80" width="80" height="110" fill="#dc3912"/>
<rect x="210" y="50" width="80" height="140" fill="#ff9900"/>
<text x="10" y="15">tasks per second</text>
</svg>
<p id="summary">3 tasks, 0 failed</p>
</body></html>`

// TestRender: a static page with inline SVG renders to a screenshot of
// the window's size with content, its DOM holds its text, and it logs and
// fetches nothing; no Chromium process is left.
func TestRender(t *testing.T) {
	needBrowser(t)
	p := RenderWith(t, writePage(t, "report.html", chartPage), Options{Width: 640, Height: 480})
	assert.Contains(t, p.DOM, `<p id="summary">3 tasks, 0 failed</p>`)
	assert.Contains(t, p.DOM, "<rect")
	assert.Empty(t, p.Console)
	assert.Empty(t, p.Requests)
	assert.True(t, strings.HasSuffix(p.URL, "/report.html"), p.URL)

	img, err := png.Decode(bytes.NewReader(p.PNG))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 640, 480), img.Bounds())
	ink, err := Ink(p.PNG)
	require.NoError(t, err)
	assert.True(t, NotBlank(p.PNG), "ink %.4f", ink)
	// The bars are there, in their colours.
	assert.Equal(t, color.RGBA{0x33, 0x66, 0xcc, 0xff}, color.RGBAModel.Convert(img.At(60, 200)))
	nothingLeft(t)
}

// TestBlank: an empty page renders to a blank screenshot.
func TestBlank(t *testing.T) {
	needBrowser(t)
	path := writePage(t, "blank.html", "<!doctype html><html><body></body></html>")
	assert.Contains(t, DumpDOM(t, path), "<body></body>")
	shot := Screenshot(t, path, 320, 240)
	ink, err := Ink(shot)
	require.NoError(t, err)
	assert.Zero(t, ink)
	assert.False(t, NotBlank(shot))
	nothingLeft(t)
}

// TestConsole: console messages, whatever their level, and uncaught
// exceptions are in Console, multi-line ones whole.
func TestConsole(t *testing.T) {
	needBrowser(t)
	p := Render(t, writePage(t, "console.html", `<!doctype html><p>console</p>
<script>console.error("boom"); console.log("two\nlines"); throw new Error("thrown")</script>`))
	assert.Equal(t, []string{"boom", "two\nlines", "Uncaught Error: thrown"}, p.Console)
	assert.Empty(t, p.Requests)
	nothingLeft(t)
}

// TestRequests: whatever the page fetches is in Requests, and none of it
// reaches a server: not one by name, not one by address, not a file
// beside the page.
func TestRequests(t *testing.T) {
	needBrowser(t)
	// A server on the machine that the page names by address, so that
	// neither name resolution nor the network could have stopped it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	other := "http://" + ln.Addr().String() + "/beacon.gif"

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "style.css"), []byte("p { color: red }"), 0o644))
	path := filepath.Join(dir, "net.html")
	require.NoError(t, os.WriteFile(path, []byte(`<!doctype html>
<link rel="stylesheet" href="style.css">
<p>net</p>
<img src="http://example.com/x.png">
<img src="https://example.org/y.png">
<img src="`+other+`">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">`), 0o644))

	start := time.Now()
	p := Render(t, path)
	t.Logf("rendered in %v", time.Since(start))
	assert.Contains(t, p.DOM, "<p>net</p>")
	assert.ElementsMatch(t, []string{
		"GET " + strings.TrimSuffix(p.URL, "net.html") + "style.css",
		"GET http://example.com/x.png",
		"GET https://example.org/y.png",
		"GET " + other,
	}, p.Requests)
	assert.Zero(t, reached.Load(), "the page reached a server on 127.0.0.1")
	nothingLeft(t)
}

// TestTimeout: a page that never finishes loading fails the test once
// the timeout expires, and leaves no process behind.
func TestTimeout(t *testing.T) {
	needBrowser(t)
	path := writePage(t, "spin.html", `<!doctype html><script>for (;;) {}</script>`)
	ft := &fakeT{TB: t}
	start := time.Now()
	func() {
		defer func() { _ = recover() }()
		RenderWith(ft, path, Options{Timeout: 3 * time.Second})
	}()
	assert.Less(t, time.Since(start), 3*time.Second+waitLimit)
	assert.True(t, ft.fatal, "no failure")
	assert.Contains(t, ft.msg, "no result after 3s")
	nothingLeft(t)
}

// fakeT records a Fatal instead of ending the test, and passes the rest
// on.
type fakeT struct {
	testing.TB
	fatal bool
	msg   string
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = true
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// TestProcesses: while Chromium runs, processes finds its processes, in
// its group and out of it (the crash handlers, if the browser starts
// any); when Render returns, none is left.
func TestProcesses(t *testing.T) {
	needBrowser(t)
	path := writePage(t, "busy.html", `<!doctype html><p>busy</p>
<script>const end = Date.now() + 1500; while (Date.now() < end) {}</script>`)
	var inGroup, outside atomic.Int32
	done := make(chan struct{})
	var wg sync.WaitGroup
	runsMu.Lock()
	watch = func(r run) {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				in, out := int32(0), int32(0)
				for _, pid := range processes(r.pgid, r.mark) {
					if p, ok := testlab.Stat(pid); ok && p.PGrp == r.pgid {
						in++
					} else if ok {
						out++
					}
				}
				inGroup.Store(max(inGroup.Load(), in))
				outside.Store(max(outside.Load(), out))
			}
		})
	}
	runsMu.Unlock()
	defer func() {
		runsMu.Lock()
		watch = nil
		runsMu.Unlock()
	}()
	p := Render(t, path)
	close(done)
	wg.Wait()
	assert.Contains(t, p.DOM, "<p>busy</p>")
	t.Logf("at most %d processes in the group, %d out of it", inGroup.Load(), outside.Load())
	assert.Greater(t, inGroup.Load(), int32(1), "processes found in the group")
	nothingLeft(t)
}

func TestInk(t *testing.T) {
	encode := func(img image.Image) []byte {
		var b bytes.Buffer
		require.NoError(t, png.Encode(&b, img))
		return b.Bytes()
	}
	img := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	white := encode(img)
	ink, err := Ink(white)
	require.NoError(t, err)
	assert.Zero(t, ink)
	assert.False(t, NotBlank(white))

	for x := range 10 {
		for y := range 10 {
			img.Set(x, y, color.Black)
		}
	}
	ink, err = Ink(encode(img))
	require.NoError(t, err)
	assert.InDelta(t, 0.01, ink, 1e-9)
	assert.True(t, NotBlank(encode(img)))

	_, err = Ink([]byte("not a png"))
	assert.Error(t, err)
	assert.False(t, NotBlank([]byte("not a png")))
}
