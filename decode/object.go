package decode

import (
	"bytes"

	json "github.com/goccy/go-json"
)

// member is one key and value of a JSON object: the key unescaped, the
// value as written.
type member struct {
	key string
	raw json.RawMessage
}

// members appends the members of the JSON object in data to buf, in the
// order written, keys given twice included (which a map would hide). ok is
// false when data is not a JSON object.
func members(data []byte, buf []member) (_ []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		buf = append(buf, member{key: key, raw: raw})
	}
	return buf, true
}
