package decode

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// parseTask fills t from one JSON task object. It reports the first problem
// it finds; t.Seq and t.Where must already be set.
func parseTask(data []byte, t *job.Task) error {
	t.Identifier = strconv.FormatInt(t.Seq, 10)
	var fields map[string]json.RawMessage
	if !json.Valid(data) {
		var v any
		return fmt.Errorf("invalid JSON: %s", jsonError(json.Unmarshal(data, &v)))
	}
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return fmt.Errorf("a task must be a JSON object, not %s", abbreviate(bytes.TrimSpace(data)))
	}
	// The identifier comes first so that every later error names it.
	if raw, ok := fields["identifier"]; ok {
		id, err := textValue(raw)
		if err != nil {
			return fmt.Errorf(`"identifier" must be a string or a number`)
		}
		t.Identifier = id
	}
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		if err := setField(t, key, fields[key]); err != nil {
			return err
		}
	}
	if t.Command == "" {
		return errors.New(`"command" is required`)
	}
	return nil
}

func setField(t *job.Task, key string, raw json.RawMessage) error {
	var err error
	switch key {
	case "identifier":
		return nil
	case "command":
		if err = json.Unmarshal(raw, &t.Command); err != nil {
			return errors.New(`"command" must be a string`)
		}
	case "args":
		if t.Args, err = textArray(raw); err != nil {
			return fmt.Errorf(`"args" must be an array of strings: %w`, err)
		}
	case "env":
		if t.Env, err = textObject(raw); err != nil {
			return fmt.Errorf(`"env" must be an object of strings: %w`, err)
		}
	case "dir":
		if err = json.Unmarshal(raw, &t.Dir); err != nil {
			return errors.New(`"dir" must be a string`)
		}
	case "stdin":
		if err = json.Unmarshal(raw, &t.Stdin); err != nil {
			return errors.New(`"stdin" must be a string`)
		}
		t.HasStdin = !isNull(raw)
	case "timeout":
		if t.Timeout, err = parseTimeout(raw); err != nil {
			return fmt.Errorf(`"timeout": %w`, err)
		}
		t.HasTimeout = !isNull(raw)
	case "meta":
		if !isNull(raw) {
			t.Meta = raw
		}
	default:
		return fmt.Errorf("unknown field %q (put your own data in \"meta\")", key)
	}
	return nil
}

// parseTimeout reads a task's time limit: a JSON string in the form of
// job.ParseDuration, or a JSON number of seconds.
func parseTimeout(raw []byte) (time.Duration, error) {
	if isNull(raw) {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return job.ParseDuration(s)
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err == nil {
		if d, ok := job.Seconds(secs); ok {
			return d, nil
		}
	}
	return 0, errors.New("must be a duration such as \"30s\" or a number of seconds")
}

// textValue accepts a JSON string, or a number kept as its text.
func textValue(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && !isNull(raw) {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && !isNull(raw) {
		return n.String(), nil
	}
	return "", fmt.Errorf("%s is not a string", raw)
}

func textArray(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s is not an array", abbreviate(raw))
	}
	out := make([]string, len(items))
	for i, item := range items {
		s, err := textValue(item)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i+1, err)
		}
		out[i] = s
	}
	return out, nil
}

func textObject(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s is not an object", abbreviate(raw))
	}
	out := make(map[string]string, len(items))
	for k, item := range items {
		s, err := textValue(item)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

func abbreviate(raw []byte) string {
	const most = 40
	if len(raw) > most {
		return string(raw[:most]) + "..."
	}
	return string(raw)
}

// jsonError shortens the JSON library's messages to what a user needs.
func jsonError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s at byte %d", bytes.TrimPrefix([]byte(syntax.Error()), []byte("json: ")), syntax.Offset)
	}
	return err.Error()
}
