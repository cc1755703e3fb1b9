package report

import (
	_ "embed"
	"html/template"
	"io"
	"strconv"
	"time"
)

//go:embed page.html
var pageHTML string

// page is the report's HTML template. html/template escapes what the
// tasks say (identifiers, errors, stderr) in every place it goes: text,
// attributes and the SVG titles.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":   func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"add": func(a, b float64) float64 { return a + b },
}).Parse(pageHTML))

// Options are what the page says about itself.
type Options struct {
	// Title heads the page; empty means "workerpool run".
	Title string
	// Generated is when the page was made; zero means now.
	Generated time.Time
}

// Write writes the page of the results added so far to w.
func (b *Builder) Write(w io.Writer, opts Options) error {
	if opts.Title == "" {
		opts.Title = "workerpool run"
	}
	if opts.Generated.IsZero() {
		opts.Generated = time.Now()
	}
	return page.Execute(w, newView(b, opts.Title, opts.Generated))
}
