package decode

import (
	"strconv"
	"strings"
)

// segKind is what a piece of a template's word stands for.
type segKind int

const (
	literal    segKind = iota // its own text
	allArgs                   // {} and its path forms: every argument of the task
	positional                // {n}, {-n}, {name} and their path forms: one argument
	seqNumber                 // {#}
	slotNumber                // {%}
)

// pathCut is how a replacement string takes an argument apart as a path
// (see pathRules).
type pathCut int

const (
	whole     pathCut = iota // {}
	baseName                 // {/}
	dirName                  // {//}
	noExt                    // {.}
	baseNoExt                // {/.}
	numCuts
)

// cutSuffixes end the replacement strings of each cut: "{1/.}" is the
// first argument's base name without its extension. The longest come
// first, where two share an end.
var cutSuffixes = []struct {
	suffix string
	cut    pathCut
}{{"/.", baseNoExt}, {"//", dirName}, {"/", baseName}, {".", noExt}}

// segment is one piece of a template's word.
type segment struct {
	kind segKind
	text string  // of a literal
	n    int     // of a positional: from 1, or from the end when negative
	cut  pathCut // of allArgs and positional
}

// maxReplacement bounds the text between braces that is looked at as a
// replacement string, so that a word of many braces is read in linear time.
const maxReplacement = 256

// template is the command of template mode, its words taken apart into
// replacement strings and the text between them.
type template struct {
	words [][]segment
	// places reports whether a word holds a replacement string; without
	// one, the arguments are appended as words of their own.
	places bool
	// cuts reports which cuts the words use.
	cuts [numCuts]bool
}

// parseTemplate takes the words of a template apart. names are the
// columns' names of a header, each standing for the column of its number
// (from 1).
func parseTemplate(words []string, names map[string]int) *template {
	tp := &template{words: make([][]segment, len(words))}
	for i, w := range words {
		tp.words[i] = parseWord(w, names)
		for _, s := range tp.words[i] {
			if s.kind != literal {
				tp.places = true
			}
			if s.kind == allArgs || s.kind == positional {
				tp.cuts[s.cut] = true
			}
		}
	}
	return tp
}

func parseWord(w string, names map[string]int) []segment {
	var segs []segment
	lit := func(s string) {
		if s == "" {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].kind == literal {
			segs[n-1].text += s
			return
		}
		segs = append(segs, segment{kind: literal, text: s})
	}
	for w != "" {
		open := strings.IndexByte(w, '{')
		if open < 0 {
			break
		}
		lit(w[:open])
		end := strings.IndexByte(w[open+1:min(len(w), open+2+maxReplacement)], '}')
		if end < 0 {
			lit("{")
			w = w[open+1:]
			continue
		}
		if s, ok := parseReplacement(w[open+1:open+1+end], names); ok {
			segs = append(segs, s)
			w = w[open+2+end:]
			continue
		}
		lit("{")
		w = w[open+1:]
	}
	lit(w)
	return segs
}

// parseReplacement reads what is between the braces of a replacement
// string, or reports that it is none.
func parseReplacement(inner string, names map[string]int) (segment, bool) {
	switch inner {
	case "#":
		return segment{kind: seqNumber}, true
	case "%":
		return segment{kind: slotNumber}, true
	}
	if s, ok := argReplacement(inner, whole, names); ok {
		return s, true
	}
	for _, c := range cutSuffixes {
		if prefix, ok := strings.CutSuffix(inner, c.suffix); ok {
			if s, ok := argReplacement(prefix, c.cut, names); ok {
				return s, true
			}
		}
	}
	return segment{}, false
}

// argReplacement reads a replacement string without its cut's suffix:
// empty for every argument, a number or a column's name for one.
func argReplacement(s string, cut pathCut, names map[string]int) (segment, bool) {
	if s == "" {
		return segment{kind: allArgs, cut: cut}, true
	}
	if n, ok := names[s]; ok {
		return segment{kind: positional, n: n, cut: cut}, true
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] < '1' || digits[0] > '9' || len(digits) > 9 {
		return segment{}, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return segment{}, false
	}
	return segment{kind: positional, n: n, cut: cut}, true
}

// cutArg takes an argument apart as cut says.
func cutArg(arg string, cut pathCut) string {
	switch cut {
	case baseName:
		return hostPaths.base(arg)
	case dirName:
		return hostPaths.dir(arg)
	case noExt:
		return hostPaths.noExt(arg)
	case baseNoExt:
		return hostPaths.noExt(hostPaths.base(arg))
	}
	return arg
}

// positionalArg returns the argument a positional replacement string stands
// for: the n-th from the start, or from the end when n is negative, or ""
// when there is none, as in GNU parallel.
func positionalArg(args []string, n int) string {
	switch {
	case !inRange(args, n):
		return ""
	case n < 0:
		return args[len(args)+n]
	}
	return args[n-1]
}

// expand returns the words of a task's command line for its arguments and
// number, the slot's number taken as 1, and for each word that holds
// "{%}" the parts of it around the slot's number (see job.Task.SlotWords);
// slotted is nil when none does.
//
// A word that holds {} (or a path form of it) becomes one word per
// argument when the task has several: with context, the word is repeated
// for each argument (GNU parallel's -X and -N); otherwise the arguments
// take the place of {} as words of their own, the text before {} joined to
// the first and the text after it to the last, as parallel's shell splits
// them.
func (tp *template) expand(args []string, seq int64, context bool) (words []string, slotted [][]string) {
	var b wordBuilder
	for _, segs := range tp.words {
		hasAll := false
		for _, s := range segs {
			hasAll = hasAll || s.kind == allArgs
		}
		if missing(segs, args) {
			continue
		}
		if hasAll && context && len(args) > 1 {
			for i := range args {
				b.newWord()
				tp.fill(&b, segs, args[i:i+1], args, seq)
			}
			continue
		}
		b.newWord()
		tp.fill(&b, segs, args, args, seq)
	}
	if !tp.places {
		for _, a := range args {
			b.newWord()
			b.write(a)
		}
	}
	return b.finish()
}

// missing reports whether a word is made only of positional strings past
// the last argument: GNU parallel's shell drops such a word, rather than
// passing it as an empty argument.
func missing(segs []segment, args []string) bool {
	for _, s := range segs {
		if s.kind != positional || inRange(args, s.n) {
			return false
		}
	}
	return len(segs) > 0
}

func inRange(args []string, n int) bool {
	return n >= 1 && n <= len(args) || n <= -1 && -n <= len(args)
}

// fill writes a word's segments: all are the arguments that {} stands for,
// args those of the task.
func (tp *template) fill(b *wordBuilder, segs []segment, all, args []string, seq int64) {
	for _, s := range segs {
		switch s.kind {
		case literal:
			b.write(s.text)
		case allArgs:
			for i, a := range all {
				if i > 0 {
					b.newWord()
				}
				b.write(cutArg(a, s.cut))
			}
		case positional:
			b.write(cutArg(positionalArg(args, s.n), s.cut))
		case seqNumber:
			b.write(strconv.FormatInt(seq, 10))
		case slotNumber:
			b.slot()
		}
	}
}

// wordBuilder builds the words of a command line, each in parts around
// the slot's number.
type wordBuilder struct {
	words [][]string
}

func (b *wordBuilder) newWord() { b.words = append(b.words, []string{""}) }

func (b *wordBuilder) write(s string) {
	parts := b.words[len(b.words)-1]
	parts[len(parts)-1] += s
}

func (b *wordBuilder) slot() {
	b.words[len(b.words)-1] = append(b.words[len(b.words)-1], "")
}

// finish returns the words with slot 1, until the pool says which, and the
// parts of those that hold the slot's number.
func (b *wordBuilder) finish() (words []string, slotted [][]string) {
	words = make([]string, len(b.words))
	for i, parts := range b.words {
		words[i] = strings.Join(parts, "1")
		if len(parts) > 1 {
			if slotted == nil {
				slotted = make([][]string, len(b.words))
			}
			slotted[i] = parts
		}
	}
	return words, slotted
}

// sizer adds up the bytes that a task's command line takes, each word
// with the NUL that ends it, as arguments are added to the task, without
// building it: for -X, which puts in a task as many arguments as fit.
type sizer struct {
	tp      *template
	context bool
	// slotDigits is how many digits the slot's number may take.
	slotDigits int
	// sums are, for each cut, the bytes of the arguments so far so cut.
	sums [numCuts]int
}

// add counts one more argument.
func (z *sizer) add(arg string) {
	for c := range numCuts {
		if z.tp.cuts[c] || c == whole {
			z.sums[c] += len(cutArg(arg, c))
		}
	}
}

// reset forgets the arguments counted.
func (z *sizer) reset() { z.sums = [numCuts]int{} }

// size returns the bytes of the command line of a task with args, those
// counted by add, and number seq.
func (z *sizer) size(args []string, seq int64) int {
	k, total := len(args), 0
	for _, segs := range z.tp.words {
		base, nAll, all := 1, 0, 0
		for _, s := range segs {
			switch s.kind {
			case literal:
				base += len(s.text)
			case allArgs:
				nAll++
				all += z.sums[s.cut]
			case positional:
				base += len(cutArg(positionalArg(args, s.n), s.cut))
			case seqNumber:
				base += len(strconv.FormatInt(seq, 10))
			case slotNumber:
				base += z.slotDigits
			}
		}
		switch {
		case nAll == 0 || k <= 1:
			total += base + all
		case z.context:
			total += k*base + all
		default:
			total += base + all + nAll*(k-1)
		}
	}
	if !z.tp.places {
		total += z.sums[whole] + k
	}
	return total
}
