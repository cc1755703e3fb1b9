package encode

import (
	"iter"
	"strconv"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// splitValid yields s in pieces, in order: each run of valid UTF-8 with
// valid true, and each byte that is not part of valid UTF-8 on its own,
// with valid false. It is the one rule by which what the encoder writes is
// valid UTF-8: each such byte stands for U+FFFD, as a JSON decoder reads
// it, and the journal reads identifiers back by the same rule.
func splitValid(s string) iter.Seq2[string, bool] {
	return func(yield func(piece string, valid bool) bool) {
		start := 0 // of the valid run being measured
		for i := 0; i < len(s); {
			if r, size := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || size > 1 {
				i += size
				continue
			}
			if start < i && !yield(s[start:i], true) {
				return
			}
			if !yield(s[i:i+1], false) {
				return
			}
			i++
			start = i
		}
		if start < len(s) {
			yield(s[start:], true)
		}
	}
}

// appendValid appends s to dst with every byte that is not part of valid
// UTF-8 replaced by U+FFFD (see splitValid).
func appendValid(dst []byte, s string) []byte {
	for piece, valid := range splitValid(s) {
		if valid {
			dst = append(dst, piece...)
		} else {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
	}
	return dst
}

// appendLine appends s to dst as text on one line: valid UTF-8, as
// appendValid makes it, with every character that strconv.IsPrint says is
// not printable (a line break, a tab, an escape) written as Go quotes it
// (\n, \t, \x1b).
func appendLine(dst []byte, s string) []byte {
	for _, r := range validString(s) {
		if strconv.IsPrint(r) {
			dst = utf8.AppendRune(dst, r)
			continue
		}
		q := strconv.QuoteRune(r)
		dst = append(dst, q[1:len(q)-1]...)
	}
	return dst
}

// validString returns s as a JSON decoder reads it once the encoder has
// written it: with every byte that is not part of valid UTF-8 replaced by
// U+FFFD. Valid UTF-8 is returned as it is.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendValid(make([]byte, 0, len(s)+8), s))
}

// writeString writes s as a JSON string that a decoder reads as
// validString(s): each valid run of s escaped, and each byte that is not
// part of valid UTF-8 as \ufffd.
func (e *Encoder) writeString(s string) error {
	if utf8.ValidString(s) {
		return e.writeValue(s)
	}
	if err := e.w.WriteByte('"'); err != nil {
		return err
	}
	for piece, valid := range splitValid(s) {
		var err error
		if valid {
			err = e.writeEscaped([]byte(piece))
		} else {
			err = e.writeRaw(`\ufffd`)
		}
		if err != nil {
			return err
		}
	}
	return e.w.WriteByte('"')
}

// validMeta returns meta, which must be valid JSON, with every byte that is
// not part of valid UTF-8 replaced by U+FFFD, as the encoder treats the
// outputs and as a JSON decoder reads such a byte; valid UTF-8 is returned
// as it is, without a copy. The result is still valid JSON: outside string
// literals JSON is ASCII, so invalid bytes only occur inside strings, where
// U+FFFD may stand as itself.
func validMeta(meta json.RawMessage) json.RawMessage {
	if utf8.Valid(meta) {
		return meta
	}
	return appendValid(make([]byte, 0, len(meta)+8), string(meta))
}
