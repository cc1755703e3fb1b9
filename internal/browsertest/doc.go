// Package browsertest renders an HTML file in headless Chromium for tests.
//
// Render loads the file in a fresh headless Chromium and returns a Page:
// the DOM after the page has loaded (--dump-dom), a PNG screenshot of the
// window (--screenshot), the messages the page wrote to its console and
// the network requests it made. Screenshot and DumpDOM return one of
// these; NotBlank and Ink tell a screenshot with content from an empty
// one. Only the Chromium command line is used: no DevTools protocol.
//
// The browser is the first of chromium (Debian's package),
// chromium-headless-shell, chromium-browser and google-chrome found on
// PATH, or the program named by WORKERPOOL_CHROMIUM. When there is none,
// the test is skipped.
//
// # Console
//
// With --enable-logging=stderr, Chromium writes every message a page
// logs to its standard error, as
//
//	[pid:tid:date/time:INFO:CONSOLE:7] "boom", source: http://127.0.0.1:41231/report.html (7)
//
// (chromium-headless-shell leaves out "pid:tid:"). The message may span
// several lines. An uncaught exception is logged the same way, as
// "Uncaught Error: ...". Chromium logs a web page's messages at INFO
// whatever their level, so console.log, console.warn and console.error
// cannot be told apart: Page.Console holds them all. A page without
// scripts logs nothing. A resource that fails to load is not logged
// there; it is found among the requests.
//
// # Network
//
// The page is served over HTTP by a server on 127.0.0.1 that the test
// starts, and the same server is Chromium's only proxy: every http
// request, to any host, reaches it, and every https or ws connection is
// asked of it with CONNECT. It answers the page at its own URL and refuses
// everything else (404, or 403 for CONNECT), so that nothing leaves the
// machine. Host names resolve to nothing (--host-resolver-rules) but
// 127.0.0.1. A reference relative to the page, such as a style sheet
// beside the file, is thus a request to the server too, which a page
// opened from file:// would not show.
//
// The requests are read from Chromium's net log (--log-net-log), a JSON
// file: every URL_REQUEST_START_JOB event whose initiator is an origin
// is a request of the page. Chromium's own requests (component updates,
// time queries, account checks) have the initiator "not an origin" and
// are left out, as are the page itself and the browser's request for
// /favicon.ico on the page's server. Requests that never reach the network
// stack are not seen: data: and blob: URLs, which fetch nothing anyway,
// and a DNS prefetch or preconnect, which opens no request.
//
// # Processes
//
// Every run of Chromium has a time limit, 60 seconds unless
// Options.Timeout says otherwise. It runs in a process group of its own,
// with HOME and the profile (--user-data-dir) in a temporary directory,
// and an environment variable that marks its processes. When the run
// ends, the process group is killed, and so is every process that carries
// the mark: the crash handlers Chromium starts leave the group but keep
// the environment, and the zygote's children keep the group but not the
// environment. Render fails the test if any of them is still there after
// 10 seconds.
//
// The package works on Linux only. On other systems it is empty.
package browsertest
