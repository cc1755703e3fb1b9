package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The page's geometry, in SVG user units (CSS pixels).
const (
	chartWidth = 960 // the plotting area of every chart
	labelWidth = 150 // the names left of the timeline's lanes
	laneHeight = 10
	laneGap    = 2
	hostGap    = 14
	// maxBars is the most bars the timeline draws: past it, bars of one
	// lane that touch, to within a few pixels, and end alike are merged.
	maxBars = 4000
	// maxPoints is the most points a scatter chart draws: past it, an
	// even sample.
	maxPoints = 2000
	bins      = 40 // of the duration histogram
)

// view is what the page shows, worked out from the tasks.
type view struct {
	Title     string
	Generated string
	Totals    totals
	Timeline  timeline
	Histogram histogram
	CPU, RSS  scatter
	Idle      []hostIdle
	Slowest   []listed
	Failed    []listed
	NFailed   int
	Unplaced  int // tasks that ran but carry no times
}

type totals struct {
	Tasks, Failed, Started int
	Wall, CPU              string
	PeakRSS                string
	PeakRSSTask            string
}

// timeline is one lane per slot, lanes grouped by host.
type timeline struct {
	Width, Height float64
	Hosts         []hostLanes
	Bars          []bar
	Ticks         []tick
	Merged        int // bars drawn for more than one task
	Tasks         int // tasks on the timeline
}

type hostLanes struct {
	Name  string
	Y     float64 // of its first lane
	Lanes int
	H     float64
}

type bar struct {
	X, Y, W float64
	Outcome string
	Retried bool // its task ran more than once: a host lost, or retries
	Title   string
	task    *Task // whose title it is, worked out once the bars are merged
}

type tick struct {
	X     float64
	Label string
}

type histogram struct {
	Width, Height float64
	Bars          []hbar
	XLabels       []tick
	Log           bool
	Max           int
}

type hbar struct {
	X, Y, W, H float64
	Title      string
}

type scatter struct {
	Width, Height float64
	Points        []point
	XLabels       []tick
	YLabels       []tick
	YName         string
	Sampled       int // points drawn, when fewer than the tasks
	Of            int
}

type point struct {
	X, Y    float64
	Outcome string
	Title   string
}

type hostIdle struct {
	Name       string
	Lanes      int
	Busy, Idle string
	BusyPct    float64
	IdlePct    float64
	BusyW      float64
}

type listed struct {
	Identifier, Host, Duration, Outcome, Error, Stderr string
	Seq                                                int64
	ExitCode, Attempts                                 int
}

// newView works out the page for tasks; slow and failed are the tasks the
// page lists.
func newView(b *Builder, title string, generated time.Time) *view {
	v := &view{Title: title, Generated: generated.UTC().Format(time.RFC3339), NFailed: b.nFailed}
	placed := make([]Task, 0, len(b.tasks))
	for _, t := range b.tasks {
		if t.started() {
			placed = append(placed, t)
		} else if t.DurationMS > 0 {
			v.Unplaced++
		}
	}
	v.Totals = newTotals(b.tasks, b.nFailed)
	v.Timeline, v.Idle = newTimeline(placed)
	v.Histogram = newHistogram(placed)
	v.CPU = newScatter(placed, "CPU (user + system)", func(t *Task) float64 { return t.UserMS + t.SysMS }, fmtMS)
	v.RSS = newScatter(placed, "peak RSS", func(t *Task) float64 { return float64(t.MaxRSSKB) }, fmtKB)
	for _, t := range b.slow {
		v.Slowest = append(v.Slowest, newListed(&t))
	}
	for _, t := range b.failed {
		v.Failed = append(v.Failed, newListed(&t))
	}
	return v
}

func newListed(t *Task) listed {
	return listed{Identifier: t.Identifier, Host: t.Host, Duration: fmtMS(t.DurationMS), Outcome: t.outcome(),
		Error: t.Error, Stderr: t.Stderr, Seq: t.Seq, ExitCode: t.ExitCode, Attempts: t.Attempts}
}

func newTotals(tasks []Task, failed int) totals {
	tt := totals{Tasks: len(tasks), Failed: failed}
	var first, last time.Time
	var cpu float64
	var peak int64
	for i := range tasks {
		t := &tasks[i]
		cpu += t.UserMS + t.SysMS
		if t.MaxRSSKB > peak {
			peak, tt.PeakRSSTask = t.MaxRSSKB, t.Identifier
		}
		if !t.started() {
			continue
		}
		tt.Started++
		if first.IsZero() || t.StartedAt.Before(first) {
			first = t.StartedAt
		}
		if t.EndedAt.After(last) {
			last = t.EndedAt
		}
	}
	tt.Wall, tt.CPU, tt.PeakRSS = fmtMS(ms(last.Sub(first))), fmtMS(cpu), fmtKB(float64(peak))
	return tt
}

// newTimeline places each task on a lane of its host: the first lane free
// at its start, as a slot would have been. Hosts come in order of name,
// this machine ("") first.
func newTimeline(tasks []Task) (timeline, []hostIdle) {
	tl := timeline{Width: labelWidth + chartWidth, Tasks: len(tasks)}
	if len(tasks) == 0 {
		return tl, nil
	}
	slices.SortFunc(tasks, func(a, b Task) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.Seq, b.Seq))
	})
	first, last := tasks[0].StartedAt, tasks[0].EndedAt
	for i := range tasks {
		first = minTime(first, tasks[i].StartedAt)
		if tasks[i].EndedAt.After(last) {
			last = tasks[i].EndedAt
		}
	}
	span := max(last.Sub(first), time.Millisecond)
	x := func(at time.Time) float64 { return labelWidth + chartWidth*float64(at.Sub(first))/float64(span) }

	type lane struct {
		free time.Time
		bars []bar
	}
	var idle []hostIdle
	y := 0.0
	for start := 0; start < len(tasks); {
		end := start
		for end < len(tasks) && tasks[end].Host == tasks[start].Host {
			end++
		}
		var lanes []*lane
		busy := time.Duration(0)
		for i := start; i < end; i++ {
			t := &tasks[i]
			busy += t.EndedAt.Sub(t.StartedAt)
			k := slices.IndexFunc(lanes, func(l *lane) bool { return !l.free.After(t.StartedAt) })
			if k < 0 {
				lanes = append(lanes, &lane{})
				k = len(lanes) - 1
			}
			lanes[k].free = t.EndedAt
			lanes[k].bars = append(lanes[k].bars, bar{X: x(t.StartedAt), W: max(x(t.EndedAt)-x(t.StartedAt), 0.5),
				Outcome: t.outcome(), Retried: t.Attempts > 1, task: t})
		}
		h := hostLanes{Name: hostName(tasks[start].Host), Y: y, Lanes: len(lanes)}
		for k, l := range lanes {
			for _, b := range l.bars {
				b.Y = y + float64(k)*(laneHeight+laneGap)
				tl.Bars = append(tl.Bars, b)
			}
		}
		h.H = float64(len(lanes))*(laneHeight+laneGap) - laneGap
		y += h.H + hostGap
		tl.Hosts = append(tl.Hosts, h)
		idle = append(idle, newHostIdle(h.Name, len(lanes), busy, span))
		start = end
	}
	tl.Height = y
	tl.Bars, tl.Merged = mergeBars(tl.Bars, maxBars)
	for i := range tl.Bars {
		if b := &tl.Bars[i]; b.Title == "" {
			b.Title = barTitle(b.task)
		}
	}
	for _, f := range ticksOf(span) {
		tl.Ticks = append(tl.Ticks, tick{X: labelWidth + chartWidth*f.at, Label: f.label})
	}
	return tl, idle
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func hostName(h string) string {
	if h == "" {
		return "this machine"
	}
	return h
}

func barTitle(t *Task) string {
	s := fmt.Sprintf("%s (#%d) on %s: %s, exit %d, %s to %s", t.Identifier, t.Seq, hostName(t.Host), fmtMS(t.DurationMS),
		t.ExitCode, t.StartedAt.UTC().Format("15:04:05.000"), t.EndedAt.UTC().Format("15:04:05.000"))
	if t.UserMS+t.SysMS > 0 || t.MaxRSSKB > 0 {
		s += fmt.Sprintf(", CPU %s, peak RSS %s", fmtMS(t.UserMS+t.SysMS), fmtKB(float64(t.MaxRSSKB)))
	}
	if t.Attempts > 1 {
		s += fmt.Sprintf(", attempt %d", t.Attempts)
	}
	if t.Error != "" {
		s += ": " + t.Error
	}
	return s
}

func newHostIdle(name string, lanes int, busy, span time.Duration) hostIdle {
	total := time.Duration(lanes) * span
	pct := 100 * float64(busy) / float64(max(total, 1))
	pct = min(pct, 100)
	return hostIdle{Name: name, Lanes: lanes, Busy: fmtMS(ms(busy)), Idle: fmtMS(ms(max(total-busy, 0))),
		BusyPct: pct, IdlePct: 100 - pct, BusyW: 3 * pct}
}

// mergeBars draws bars as they are when there are at most limit of them.
// Past it, a bar that starts within gap pixels of the end of the one
// before it on its lane, with the same outcome, is drawn with it, gap
// doubling until the bars are few enough. merged counts the bars drawn for
// more than one task.
func mergeBars(bars []bar, limit int) (out []bar, merged int) {
	if len(bars) <= limit {
		return bars, 0
	}
	slices.SortStableFunc(bars, func(a, b bar) int { return cmp.Or(cmp.Compare(a.Y, b.Y), cmp.Compare(a.X, b.X)) })
	for gap := 1.0; ; gap *= 2 {
		out, merged = out[:0], 0
		n := 1
		for _, b := range bars {
			if k := len(out) - 1; k >= 0 && out[k].Y == b.Y && out[k].Outcome == b.Outcome && b.X-(out[k].X+out[k].W) <= gap {
				out[k].W = max(out[k].W, b.X+b.W-out[k].X)
				out[k].Retried = out[k].Retried || b.Retried
				n++
				continue
			}
			if n > 1 {
				out[len(out)-1].Title = fmt.Sprintf("%d tasks, %s", n, out[len(out)-1].Outcome)
				merged++
			}
			out = append(out, b)
			n = 1
		}
		if n > 1 {
			out[len(out)-1].Title = fmt.Sprintf("%d tasks, %s", n, out[len(out)-1].Outcome)
			merged++
		}
		if len(out) <= limit || gap > chartWidth {
			return out, merged
		}
	}
}

type fraction struct {
	at    float64
	label string
}

// ticksOf returns about 8 round marks over a span of time.
func ticksOf(span time.Duration) []fraction {
	steps := []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
		20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	var out []fraction
	for at := time.Duration(0); at <= span; at += step {
		out = append(out, fraction{at: float64(at) / float64(span), label: fmtDuration(at)})
	}
	return out
}

// newHistogram counts the tasks' durations in bins: of equal width, or
// of equal ratio when the durations spread over more than two orders of
// magnitude.
func newHistogram(tasks []Task) histogram {
	h := histogram{Width: chartWidth, Height: 160}
	if len(tasks) == 0 {
		return h
	}
	lo, hi := math.Inf(1), 0.0
	for i := range tasks {
		d := tasks[i].DurationMS
		lo, hi = min(lo, d), max(hi, d)
	}
	h.Log = lo > 0 && hi/lo > 100
	scale := func(d float64) float64 { return d }
	unscale := scale
	if h.Log {
		scale, unscale = math.Log10, func(x float64) float64 { return math.Pow(10, x) }
	}
	a, z := scale(lo), scale(hi)
	if z <= a {
		z = a + 1
	}
	counts := make([]int, bins)
	for i := range tasks {
		k := int(float64(bins) * (scale(tasks[i].DurationMS) - a) / (z - a))
		counts[min(max(k, 0), bins-1)]++
	}
	h.Max = slices.Max(counts)
	w := chartWidth / float64(bins)
	for k, n := range counts {
		bh := h.Height * float64(n) / float64(h.Max)
		from, to := unscale(a+(z-a)*float64(k)/bins), unscale(a+(z-a)*float64(k+1)/bins)
		h.Bars = append(h.Bars, hbar{X: float64(k) * w, Y: h.Height - bh, W: w - 1, H: bh,
			Title: fmt.Sprintf("%d tasks from %s to %s", n, fmtMS(from), fmtMS(to))})
	}
	for k := 0; k <= bins; k += bins / 4 {
		h.XLabels = append(h.XLabels, tick{X: float64(k) * w, Label: fmtMS(unscale(a + (z-a)*float64(k)/bins))})
	}
	return h
}

// newScatter plots y of each task against its duration.
func newScatter(tasks []Task, name string, y func(*Task) float64, format func(float64) string) scatter {
	s := scatter{Width: chartWidth, Height: 200, YName: name, Of: len(tasks)}
	if len(tasks) == 0 {
		return s
	}
	maxX, maxY := 0.0, 0.0
	for i := range tasks {
		maxX, maxY = max(maxX, tasks[i].DurationMS), max(maxY, y(&tasks[i]))
	}
	if maxY == 0 {
		return s
	}
	maxX = max(maxX, 1)
	step := max(1, (len(tasks)+maxPoints-1)/maxPoints)
	for i := 0; i < len(tasks); i += step {
		t := &tasks[i]
		s.Points = append(s.Points, point{X: s.Width * t.DurationMS / maxX, Y: s.Height * (1 - y(t)/maxY), Outcome: t.outcome(),
			Title: fmt.Sprintf("%s: %s, %s", t.Identifier, fmtMS(t.DurationMS), format(y(t)))})
	}
	if step > 1 {
		s.Sampled = len(s.Points)
	}
	for k := 0; k <= 4; k++ {
		f := float64(k) / 4
		s.XLabels = append(s.XLabels, tick{X: s.Width * f, Label: fmtMS(maxX * f)})
		s.YLabels = append(s.YLabels, tick{X: s.Height * (1 - f), Label: format(maxY * f)})
	}
	return s
}

// fmtMS writes a number of milliseconds as a short duration.
func fmtMS(v float64) string {
	return fmtDuration(time.Duration(v * float64(time.Millisecond)))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// fmtKB writes a number of KiB as a size.
func fmtKB(kb float64) string {
	switch {
	case kb >= 1<<20:
		return fmt.Sprintf("%.1f GiB", kb/(1<<20))
	case kb >= 1<<10:
		return fmt.Sprintf("%.1f MiB", kb/(1<<10))
	}
	return fmt.Sprintf("%.0f KiB", kb)
}
