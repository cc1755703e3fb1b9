//go:build linux

package browsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/workerpool/workerpool/internal/testlab"
)

// BrowserVar is the name of the environment variable that, when set,
// names the browser to run instead of the first one found on PATH.
const BrowserVar = "WORKERPOOL_CHROMIUM"

// markVar is the name of the environment variable that marks the
// processes of one run.
const markVar = "WORKERPOOL_BROWSERTEST"

// onStart, when not nil, is called with the process group and the mark
// of each run once Chromium has started.
var onStart func(pgid int, mark string)

// browsers are the programs looked for on PATH, in that order.
var browsers = []string{"chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"}

const (
	// DefaultWidth and DefaultHeight are the size of the window, in CSS
	// pixels, when Options leaves it out.
	DefaultWidth  = 1280
	DefaultHeight = 800
	// DefaultTimeout bounds a run of Chromium when Options leaves it out.
	DefaultTimeout = 60 * time.Second
	// MinInk is the share of pixels that NotBlank wants to differ from
	// the background.
	MinInk = 0.005

	// waitLimit bounds the wait for the processes of a run to be gone.
	waitLimit = 10 * time.Second
	// pollEvery is the interval between two looks at the process table.
	pollEvery = 20 * time.Millisecond
)

// Options adjust a run of Chromium. The zero value is the default.
type Options struct {
	// Width and Height are the size of the window, and of the
	// screenshot, in pixels (the device scale factor is 1).
	Width, Height int
	// Timeout bounds the run; when it expires, the test fails.
	Timeout time.Duration
}

// Page is what a run of Chromium saw of a page.
type Page struct {
	// URL is the address the page was loaded from:
	// http://127.0.0.1:<port>/<file name>.
	URL string
	// DOM is the document serialized after the load event, as
	// --dump-dom prints it.
	DOM string
	// PNG is the screenshot of the window. Content below or beside the
	// window is not in it.
	PNG []byte
	// Console holds the text of every message the page logged to its
	// console, whatever its level, and of every uncaught exception, in
	// order.
	Console []string
	// Requests holds every request the page made, "METHOD URL", each
	// once, in the order first made: to another host, or to the page's
	// server for anything but the page itself. None of them got an
	// answer. (Chromium sometimes asks twice for a style sheet that
	// failed to load.)
	Requests []string
	// Stderr is Chromium's standard error, for diagnostics.
	Stderr string
}

// Find returns the path of the browser: the program named by
// WORKERPOOL_CHROMIUM, or the first of chromium, chromium-headless-shell,
// chromium-browser and google-chrome found on PATH.
func Find() (string, error) {
	if name := os.Getenv(BrowserVar); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", BrowserVar, name, err)
		}
		return path, nil
	}
	for _, name := range browsers {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("none of %s on PATH", strings.Join(browsers, ", "))
}

// Render loads the HTML file at htmlPath in headless Chromium, with a
// window of DefaultWidth by DefaultHeight, and returns what it saw. It
// skips the test when no browser is found (see Find), and calls t.Fatal
// when the file cannot be read, the page does not load, or Chromium fails
// or outlives DefaultTimeout.
func Render(t testing.TB, htmlPath string) *Page {
	t.Helper()
	return RenderWith(t, htmlPath, Options{})
}

// Screenshot renders the file as Render does, in a window of width by
// height pixels, and returns the screenshot as PNG.
func Screenshot(t testing.TB, htmlPath string, width, height int) []byte {
	t.Helper()
	return RenderWith(t, htmlPath, Options{Width: width, Height: height}).PNG
}

// DumpDOM renders the file as Render does and returns the serialized DOM.
func DumpDOM(t testing.TB, htmlPath string) string {
	t.Helper()
	return Render(t, htmlPath).DOM
}

// RenderWith is Render with options.
func RenderWith(t testing.TB, htmlPath string, opts Options) *Page {
	t.Helper()
	browser, err := Find()
	if err != nil {
		t.Skipf("browsertest: no Chromium found (install Debian's chromium): %v", err)
	}
	if opts.Width <= 0 {
		opts.Width = DefaultWidth
	}
	if opts.Height <= 0 {
		opts.Height = DefaultHeight
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	profile := filepath.Join(dir, "profile")
	for _, d := range []string{home, profile} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("browsertest: %v", err)
		}
	}
	shot := filepath.Join(dir, "screenshot.png")
	netLog := filepath.Join(dir, "netlog.json")

	srv := serve(filepath.Base(htmlPath), html)
	defer srv.Close()
	page := &Page{URL: srv.URL + "/" + url.PathEscape(filepath.Base(htmlPath))}

	args := []string{
		"--headless",
		"--disable-gpu",
		"--no-sandbox", // the sandbox refuses to run as root
		"--user-data-dir=" + profile,
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-default-apps",
		"--disable-sync",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-breakpad",
		"--password-store=basic",
		"--mute-audio",
		"--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--enable-logging=stderr",
		"--v=0",
		"--proxy-server=" + srv.URL,
		"--proxy-bypass-list=<-loopback>",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--log-net-log=" + netLog,
		"--window-size=" + strconv.Itoa(opts.Width) + "," + strconv.Itoa(opts.Height),
		"--screenshot=" + shot,
		"--dump-dom",
		page.URL,
	}
	mark := newMark()
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, markVar+"="+mark)
	// A process group of its own, which the zygote and its children join;
	// Pdeathsig, should the test binary die before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("browsertest: %s: %v", browser, err)
	}
	if onStart != nil {
		onStart(cmd.Process.Pid, mark)
	}
	err = cmd.Wait()
	if left := reap(cmd.Process.Pid, mark); len(left) > 0 {
		t.Errorf("browsertest: Chromium processes %v still there %v after SIGKILL", left, waitLimit)
	}
	page.Stderr = stderr.String()
	if ctx.Err() != nil {
		t.Fatalf("browsertest: %s: no result after %v\n%s", page.URL, opts.Timeout, page.Stderr)
	}
	if err != nil {
		t.Fatalf("browsertest: %s: %v\n%s", browser, err, page.Stderr)
	}
	if m := loadFailed.FindString(page.Stderr); m != "" {
		t.Fatalf("browsertest: %s: %s\n%s", page.URL, m, page.Stderr)
	}

	page.DOM = stdout.String()
	page.Console = consoleMessages(page.Stderr)
	if page.PNG, err = os.ReadFile(shot); err != nil {
		t.Fatalf("browsertest: no screenshot: %v\n%s", err, page.Stderr)
	}
	if page.Requests, err = pageRequests(netLog, page.URL, srv.URL); err != nil {
		t.Fatalf("browsertest: net log: %v", err)
	}
	return page
}

// serve starts the server that holds the page, at /<name>, and is the
// browser's proxy: it refuses every other request and every CONNECT.
func serve(name string, html []byte) *httptest.Server {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodConnect:
			http.Error(w, "browsertest: no network", http.StatusForbidden)
		case r.Host == srv.Listener.Addr().String() && r.URL.Path == "/"+name:
			// No charset: the page is decoded as it would be from a file.
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write(html)
		default:
			http.NotFound(w, r)
		}
	})
	srv.Start()
	return srv
}

// newMark returns a value unique to one run, for markVar.
func newMark() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loadFailed matches what Chromium logs when the page itself does not
// load.
var loadFailed = regexp.MustCompile(`Page load failed: \S+`)

// consoleLine matches one console message on Chromium's standard error:
// [pid:tid:time:INFO:CONSOLE:7] "text", source: URL (7). The text may
// span lines. Older versions write CONSOLE(7) for CONSOLE:7.
var consoleLine = regexp.MustCompile(`(?ms)^\[[^\]\n]*:CONSOLE(?::\d+|\(\d+\))\] "(.*?)", source: [^\n]* \(\d+\)$`)

// consoleMessages returns the text of every console message in stderr.
func consoleMessages(stderr string) []string {
	var msgs []string
	for _, m := range consoleLine.FindAllStringSubmatch(stderr, -1) {
		msgs = append(msgs, m[1])
	}
	return msgs
}

// netLogFile is what pageRequests reads of a net log.
type netLogFile struct {
	Constants struct {
		LogEventTypes map[string]int `json:"logEventTypes"`
	} `json:"constants"`
	Events []struct {
		Type   int `json:"type"`
		Params struct {
			Initiator string `json:"initiator"`
			Method    string `json:"method"`
			URL       string `json:"url"`
		} `json:"params"`
	} `json:"events"`
}

// pageRequests returns, as "METHOD URL", the requests of the page in the
// net log at path, each once: those with an origin as initiator, but for
// the page at pageURL and the favicon on its server at origin.
func pageRequests(path, pageURL, origin string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var log netLogFile
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, err
	}
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		return nil, errors.New("no URL_REQUEST_START_JOB event type")
	}
	var reqs []string
	seen := map[string]bool{}
	for _, e := range log.Events {
		p := e.Params
		if e.Type != start || p.URL == "" {
			continue
		}
		if p.Initiator == "" || p.Initiator == "not an origin" {
			continue // the browser's own
		}
		if p.URL == pageURL || p.URL == origin+"/favicon.ico" {
			continue
		}
		req := p.Method + " " + p.URL
		if !seen[req] {
			seen[req] = true
			reqs = append(reqs, req)
		}
	}
	return reqs, nil
}

// reap kills the process group pgid and every process whose environment
// holds markVar=mark, until none is left or waitLimit has passed. It
// returns the pids still there.
func reap(pgid int, mark string) []int {
	deadline := time.Now().Add(waitLimit)
	for {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		left := processes(pgid, mark)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(pollEvery)
	}
}

// processes returns the live processes, zombies excluded, that are in the
// process group pgid or whose environment holds markVar=mark.
func processes(pgid int, mark string) []int {
	var pids []int
	for pid, p := range testlab.Procs() {
		if p.Live() && (p.PGrp == pgid || testlab.HasEnv(pid, markVar+"="+mark)) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// Ink decodes a PNG and returns the share of its pixels whose colour
// differs from the most common one, taken as the background: 0 for an
// image of one colour.
func Ink(pngData []byte) (float64, error) {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return 0, err
	}
	counts := map[[4]uint32]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			counts[rgba(img, x, y)]++
		}
	}
	total, most := 0, 0
	for _, n := range counts {
		total += n
		most = max(most, n)
	}
	if total == 0 {
		return 0, nil
	}
	return float64(total-most) / float64(total), nil
}

func rgba(img image.Image, x, y int) [4]uint32 {
	r, g, b, a := img.At(x, y).RGBA()
	return [4]uint32{r, g, b, a}
}

// NotBlank reports whether pngData is a PNG in which at least MinInk of
// the pixels differ from the background (see Ink): a page with a chart or
// a few lines of text, not an empty one.
func NotBlank(pngData []byte) bool {
	ink, err := Ink(pngData)
	return err == nil && ink >= MinInk
}
