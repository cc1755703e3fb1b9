package encode

import (
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

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
	out := make([]byte, 0, len(meta)+8)
	for len(meta) > 0 {
		r, size := utf8.DecodeRune(meta)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, meta[:size]...)
		}
		meta = meta[size:]
	}
	return out
}
