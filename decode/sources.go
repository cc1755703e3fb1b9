package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/workerpool/workerpool/internal/shorten"
)

// Source is one of GNU parallel's input sources of template mode: values
// given on the command line after ":::", or the items of a file named
// after "::::". See ParseSources.
type Source struct {
	// Values are the values given after ":::"; nil for a file.
	Values []string
	// Path names the file after "::::"; "-" is stdin.
	Path string
	// Linked pairs this source with the one before it (":::+", "::::+"):
	// the first value of one goes with the first of the other, and so on,
	// as far as the shorter goes. Otherwise every value of the sources
	// before goes with every value of this one.
	Linked bool
	// Reader reads the file of Path, as lines or NUL-separated items
	// (Options.Null); whoever opens the file sets it.
	Reader io.Reader
}

// The words that start an input source in a command line of template
// mode, as GNU parallel spells them.
const (
	valuesMark       = ":::"
	fileMark         = "::::"
	linkedValuesMark = ":::+"
	linkedFileMark   = "::::+"
)

// ParseSources splits the words of a command line of template mode into
// the command and the input sources that follow it: "::: A B" gives the
// values A and B, ":::: FILE" the items of FILE (- is stdin), ":::+" and
// "::::+" the same linked to the source before. It returns the words
// unchanged and no source when there is no source mark, and an error for
// a mark with nothing after it, a linked source with none before it, no
// command before the first mark, or stdin named twice.
func ParseSources(words []string) (command []string, sources []Source, err error) {
	first := -1
	for i, w := range words {
		if isMark(w) {
			first = i
			break
		}
	}
	if first < 0 {
		return words, nil, nil
	}
	if first == 0 {
		return nil, nil, fmt.Errorf("no command before %q: give it first, as in -- echo {} %s a b", words[0], valuesMark)
	}
	stdin := false
	for i := first; i < len(words); {
		mark := words[i]
		j := i + 1
		for j < len(words) && !isMark(words[j]) {
			j++
		}
		given := words[i+1 : j]
		src := Source{Linked: mark == linkedValuesMark || mark == linkedFileMark}
		switch {
		case src.Linked && len(sources) == 0:
			return nil, nil, fmt.Errorf("%s links its values to the input source before it, and there is none", mark)
		case len(given) == 0 && (mark == valuesMark || mark == linkedValuesMark):
			return nil, nil, fmt.Errorf("%s needs at least one value after it", mark)
		case len(given) == 0:
			return nil, nil, fmt.Errorf("%s needs a file after it (- is stdin)", mark)
		case mark == valuesMark || mark == linkedValuesMark:
			src.Values = given
			sources = append(sources, src)
		default:
			for _, path := range given {
				if path == "-" && stdin {
					return nil, nil, fmt.Errorf("%s - names stdin a second time: it can be read once", mark)
				}
				stdin = stdin || path == "-"
				sources = append(sources, Source{Path: path, Linked: src.Linked})
				src.Linked = false // each file after the first is a source of its own, as in parallel
			}
		}
		i = j
	}
	return words[:first], sources, nil
}

func isMark(w string) bool {
	return w == valuesMark || w == fileMark || w == linkedValuesMark || w == linkedFileMark
}

// record is one set of values read for a task: one item of each input
// source combined, each item split into columns by Args.Colsep.
type record struct {
	values []string
	// where names the item of the first source, for messages.
	where string
	// err is why an item cannot make a task (see badItem); values then
	// holds only the identifier to give its task.
	err error
}

// badItem is an item of an input source that cannot become an argument:
// longer than MaxItem.
type badItem struct{ unit string }

func (e badItem) Error() string {
	return fmt.Sprintf("the %s is longer than %d MiB: items become arguments, which cannot be that long", e.unit, MaxItem>>20)
}

// recordReader reads the records of one input source in order; next
// returns io.EOF after the last.
type recordReader interface {
	next() (record, error)
}

// valueReader reads the values given on the command line.
type valueReader struct {
	d      *Decoder
	values []string
	n      int
}

func (v *valueReader) next() (record, error) {
	if v.n == len(v.values) {
		return record{}, io.EOF
	}
	v.n++
	return record{values: v.d.columns(v.values[v.n-1]), where: "value " + strconv.Itoa(v.n)}, nil
}

// itemReader reads the items of a stream: lines that are not blank, or
// with Options.Null items that are not empty.
type itemReader struct {
	d *Decoder
	r *itemStream
	// of, when not empty, is appended to where: " of FILE".
	of string
	// n counts the lines or items read, blank ones included.
	n       int
	ended   bool // the stream has ended
	started bool // its byte-order mark, if any, is skipped
}

func (it *itemReader) next() (record, error) {
	if !it.started {
		it.started = true
		if err := skipBOM(it.r.r); err != nil {
			return record{}, err
		}
	}
	unit := it.r.unit()
	for !it.ended {
		item, long, err := it.r.read()
		if err != nil && err != io.EOF {
			return record{}, err
		}
		it.n++
		it.ended = err == io.EOF
		if !long && it.r.blank(item) {
			continue
		}
		rec := record{where: unit + " " + strconv.Itoa(it.n) + it.of}
		if long {
			rec.values, rec.err = []string{shorten.Text(item, 40)}, badItem{unit}
		} else {
			rec.values = it.d.columns(string(item))
		}
		return rec, nil
	}
	return record{}, io.EOF
}

// columns splits an item into its values: at each match of Args.Colsep,
// or at tabs with a header and no Colsep, as GNU parallel does; otherwise
// it is one value.
func (d *Decoder) columns(item string) []string {
	if d.colsep == nil {
		return []string{item}
	}
	return d.colsep.Split(item, -1)
}

// compileColsep compiles the pattern that splits items into columns.
func compileColsep(colsep string, header bool) (*regexp.Regexp, error) {
	if colsep == "" && header {
		colsep = "\t"
	}
	if colsep == "" {
		return nil, nil
	}
	re, err := regexp.Compile(colsep)
	if err != nil {
		return nil, fmt.Errorf("--colsep %q is not a regular expression: %w", colsep, err)
	}
	return re, nil
}

// itemStream reads the items of one stream, reusing its buffer.
type itemStream struct {
	d *Decoder
	// r is the stream; the decoder's own reader for its main input.
	r     *bufio.Reader
	delim byte
	cut   string
	item  []byte
}

func (d *Decoder) newItemStream(r *bufio.Reader) *itemStream {
	s := &itemStream{d: d, r: r, delim: '\n', cut: "\r"}
	if d.opts.Null {
		s.delim, s.cut = 0, ""
	}
	return s
}

func (s *itemStream) unit() string {
	if s.d.opts.Null {
		return "item"
	}
	return "line"
}

func (s *itemStream) blank(item []byte) bool {
	if s.d.opts.Null {
		return len(item) == 0
	}
	return len(bytes.TrimSpace(item)) == 0
}

// read reads to the next delimiter, or to the end of the stream, and
// returns what came before it without the bytes of cut at its end. When
// that is longer than MaxItem, long is true and item holds only its first
// MaxItem bytes: the rest is read and dropped as it comes. err is io.EOF
// when the stream ended before a delimiter. item is valid until the next
// call.
func (s *itemStream) read() (item []byte, long bool, err error) {
	s.item = s.item[:0]
	for {
		chunk, err := s.r.ReadSlice(s.delim)
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		keep := min(len(chunk), MaxItem-len(s.item))
		s.item = append(s.item, chunk[:keep]...)
		// Past MaxItem, only bytes of cut may follow: they are not counted.
		long = long || len(bytes.TrimLeft(chunk[keep:], s.cut)) > 0
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			return s.item, true, err
		}
		return bytes.TrimRight(s.item, s.cut), false, err
	}
}

// zipped reads the records of linked input sources side by side: the
// first record of each, then the second of each, and so on. It ends with
// the shortest source, as GNU parallel's ":::+" does; with wrap (--link)
// it ends with the longest, the shorter ones starting over.
type zipped struct {
	readers []recordReader
	// held are the sources read whole, for wrap; nil otherwise.
	held [][]record
	n    int
}

func newZipped(readers []recordReader, wrap bool) (*zipped, error) {
	z := &zipped{readers: readers}
	if !wrap {
		return z, nil
	}
	for _, r := range readers {
		recs, err := readAll(r)
		if err != nil {
			return nil, err
		}
		z.held = append(z.held, recs)
	}
	return z, nil
}

func (z *zipped) next() (record, error) {
	recs := make([]record, len(z.readers))
	if z.held != nil {
		longest := 0
		for _, h := range z.held {
			if len(h) == 0 {
				return record{}, io.EOF
			}
			longest = max(longest, len(h))
		}
		if z.n == longest {
			return record{}, io.EOF
		}
		for i, h := range z.held {
			recs[i] = h[z.n%len(h)]
		}
	} else {
		for i, r := range z.readers {
			rec, err := r.next()
			if err != nil {
				return record{}, err
			}
			recs[i] = rec
		}
	}
	z.n++
	return join(recs), nil
}

// join puts records side by side: the values of each in turn, where the
// first was read, and the first error with its own identifier.
func join(recs []record) record {
	out := record{where: recs[0].where}
	for _, r := range recs {
		if r.err != nil {
			return r
		}
		out.values = append(out.values, r.values...)
	}
	return out
}

// readAll reads the records of r to the end. A record that cannot make a
// task is an error here: the source is read whole before any task is
// made, so no task is yet there to report it.
func readAll(r recordReader) ([]record, error) {
	var recs []record
	for {
		rec, err := r.next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		if rec.err != nil {
			return nil, &FramingError{Msg: fmt.Sprintf("%s: %v", rec.where, rec.err)}
		}
		recs = append(recs, rec)
	}
}

// product reads every record of its first reader with every combination of
// the records held, the first varying slowest, as GNU parallel combines
// its input sources. The first is read as it goes; the others are read
// whole before the first record.
type product struct {
	first recordReader
	held  [][]record
	cur   record
	at    []int // the record of each held source that goes next with cur
	more  bool  // cur has combinations left
}

func (p *product) next() (record, error) {
	if !p.more {
		for _, h := range p.held {
			if len(h) == 0 {
				return record{}, io.EOF
			}
		}
		rec, err := p.first.next()
		if err != nil {
			return record{}, err
		}
		if rec.err != nil {
			return rec, nil // one task reports the item, whatever it goes with
		}
		p.cur, p.more = rec, true
		p.at = make([]int, len(p.held))
	}
	recs := []record{p.cur}
	for i, h := range p.held {
		recs = append(recs, h[p.at[i]])
	}
	// The last source varies fastest.
	p.more = false
	for i := len(p.at) - 1; i >= 0; i-- {
		if p.at[i]++; p.at[i] < len(p.held[i]) {
			p.more = true
			break
		}
		p.at[i] = 0
	}
	return join(recs), nil
}

// combine reads the records of several input sources: the sources in
// groups of linked ones (all of them one group with link), each group
// zipped, the groups combined by product.
func combine(readers []recordReader, sources []Source, link bool) (recordReader, error) {
	var groups [][]recordReader
	for i, r := range readers {
		if i == 0 || (!link && !sources[i].Linked) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], r)
	}
	group := func(g []recordReader) (recordReader, error) {
		if len(g) == 1 {
			return g[0], nil
		}
		return newZipped(g, link)
	}
	first, err := group(groups[0])
	if err != nil || len(groups) == 1 {
		return first, err
	}
	p := &product{first: first}
	for _, g := range groups[1:] {
		r, err := group(g)
		if err != nil {
			return nil, err
		}
		recs, err := readAll(r)
		if err != nil {
			return nil, err
		}
		p.held = append(p.held, recs)
	}
	return p, nil
}
