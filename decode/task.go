package decode

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// parseTask fills t from one JSON task object. It reports the first problem
// it finds; t.Seq and t.Where must already be set. A key given twice is a
// problem: which of the two values was meant cannot be known.
func parseTask(data []byte, t *job.Task) error {
	t.Identifier = strconv.FormatInt(t.Seq, 10)
	if !json.Valid(data) {
		var v any
		return fmt.Errorf("invalid JSON: %s", jsonError(json.Unmarshal(data, &v)))
	}
	var buf [8]member
	fields, err := sortedFields(data, buf[:0])
	if err != nil {
		return err
	}
	// The identifier comes first so that every later error names it.
	if i, found := slices.BinarySearchFunc(fields, "identifier", compareKey); found {
		id, err := textValue(fields[i].raw)
		if err != nil {
			return fmt.Errorf(`"identifier" must be a string or a number`)
		}
		t.Identifier = id
	}
	for _, f := range fields {
		if err := setField(t, f.key, f.raw); err != nil {
			return err
		}
	}
	if t.Command == "" {
		return errors.New(`"command" is required`)
	}
	return checkNUL(t)
}

// sortedFields appends the members of the task object in data (valid
// JSON) to buf, sorted by key, so that the first problem reported does not
// depend on the order of the keys. A key given twice is an error.
func sortedFields(data []byte, buf []member) ([]member, error) {
	fields, ok := members(data, buf)
	if !ok {
		return nil, fmt.Errorf("a task must be a JSON object, not %s", shorten.Text(bytes.TrimSpace(data), 40))
	}
	slices.SortStableFunc(fields, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(fields); i++ {
		if fields[i].key == fields[i-1].key {
			return nil, fmt.Errorf("%q is given more than once", fields[i].key)
		}
	}
	return fields, nil
}

func compareKey(m member, key string) int { return strings.Compare(m.key, key) }

// checkNUL reports a NUL byte in what the operating system is given to
// start the task: its command, arguments, environment and directory. No
// process can be started with one, so such a task is invalid whether it is
// run or only planned (--dry-run).
func checkNUL(t *job.Task) error {
	const why = "holds a NUL byte, which no program can be given"
	if hasNUL(t.Command) {
		return fmt.Errorf(`"command" %s`, why)
	}
	for i, arg := range t.Args {
		if hasNUL(arg) {
			return fmt.Errorf(`"args" element %d %s`, i+1, why)
		}
	}
	// The first bad key in order, so that the message does not depend on
	// the map's order.
	bad, found := "", false
	for k, v := range t.Env {
		if (hasNUL(k) || hasNUL(v)) && (!found || k < bad) {
			bad, found = k, true
		}
	}
	switch {
	case found && hasNUL(bad):
		return fmt.Errorf(`"env" key %q %s`, bad, why)
	case found:
		return fmt.Errorf(`"env" value of %q %s`, bad, why)
	case hasNUL(t.Dir):
		return fmt.Errorf(`"dir" %s`, why)
	}
	return nil
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

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
		if t.Env, err = envObject(raw); err != nil {
			return err
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
	case "limits":
		if t.Limits, err = limitsObject(raw); err != nil {
			return fmt.Errorf(`"limits": %w`, err)
		}
	case job.ResourceCPUs:
		if t.Request.CPUs, err = cpusValue(raw); err != nil {
			return fmt.Errorf(`"cpus": %w`, err)
		}
	case job.ResourceMemory:
		if !isNull(raw) {
			if t.Request.Memory, err = limitValue(raw, job.ParseMemory); err != nil {
				return fmt.Errorf(`"memory": %w`, err)
			}
		}
	case "meta":
		if !isNull(raw) {
			t.Meta = bytes.Clone(raw) // not the whole task's bytes, kept until the result is written
		}
	default:
		return fmt.Errorf("unknown field %q (put your own data in \"meta\")", key)
	}
	return nil
}

// parseTimeout reads a task's time limit: a JSON string in the form of
// job.ParseDuration, or a JSON number of seconds, with its rules.
func parseTimeout(raw []byte) (time.Duration, error) {
	if isNull(raw) {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return job.ParseDuration(s)
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return 0, errors.New("must be a duration such as \"30s\" or a number of seconds")
	}
	return job.Seconds(secs)
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
		return nil, fmt.Errorf("%s is not an array", shorten.Text(raw, 40))
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

// envObject reads "env": an object of strings (a number is kept as its
// text) whose keys can name a variable: not empty, without "=" (where a
// name ends in the environment), each given once.
func envObject(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	items, ok := members(raw, nil)
	if !ok {
		return nil, fmt.Errorf(`"env" must be an object of strings: %s is not an object`, shorten.Text(raw, 40))
	}
	out := make(map[string]string, len(items))
	for _, item := range items {
		s, err := textValue(item.raw)
		switch {
		case err != nil:
			return nil, fmt.Errorf(`"env" must be an object of strings: %q: %w`, item.key, err)
		case item.key == "":
			return nil, errors.New(`"env" key "" is empty: a variable needs a name`)
		case strings.Contains(item.key, "="):
			return nil, fmt.Errorf(`"env" key %q holds "=", which would end the variable's name`, item.key)
		}
		if _, dup := out[item.key]; dup {
			return nil, fmt.Errorf(`"env" key %q is given more than once`, item.key)
		}
		out[item.key] = s
	}
	return out, nil
}

// limitsObject reads "limits": an object of "memory" and "fsize" (sizes:
// "512M", or a number of bytes), "cpu" (a duration, as "timeout") and
// "files" (a number), each given once; any other key is an error.
func limitsObject(raw json.RawMessage) (job.Limits, error) {
	var l job.Limits
	if isNull(raw) {
		return l, nil
	}
	items, ok := members(raw, nil)
	if !ok {
		return l, fmt.Errorf("%s is not an object", shorten.Text(raw, 40))
	}
	seen := map[string]bool{}
	for _, item := range items {
		if seen[item.key] {
			return l, fmt.Errorf("%q is given more than once", item.key)
		}
		seen[item.key] = true
		var err error
		switch item.key {
		case job.LimitMemory:
			l.Memory, err = limitValue(item.raw, job.ParseSize)
		case job.LimitFSize:
			l.FSize, err = limitValue(item.raw, job.ParseSize)
		case job.LimitFiles:
			l.Files, err = limitValue(item.raw, job.ParseCount)
		case job.LimitCPU:
			l.CPU, err = parseTimeout(item.raw)
		default:
			return l, fmt.Errorf("unknown limit %q: use memory, cpu, files or fsize", item.key)
		}
		if err != nil {
			return l, fmt.Errorf("%q: %w", item.key, err)
		}
	}
	return l, nil
}

// limitValue reads a limit given as a JSON string, with parse, or as a
// JSON number.
func limitValue(raw json.RawMessage, parse func(string) (int64, error)) (int64, error) {
	s, err := textValue(raw)
	if err != nil {
		return 0, errors.New("must be a string or a number")
	}
	return parse(s)
}

// maxCPUs bounds a task's "cpus": no machine has more, and the sums of
// requests stay far from overflowing.
const maxCPUs = 1 << 20

// cpusValue reads "cpus": a whole number from 1, as a JSON number or
// string; null is 0, which the run's default replaces.
func cpusValue(raw json.RawMessage) (int, error) {
	if isNull(raw) {
		return 0, nil
	}
	s, err := textValue(raw)
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(s))
		if perr == nil && n >= 1 && n <= maxCPUs {
			return n, nil
		}
	}
	return 0, fmt.Errorf("must be a whole number from 1 to %d, not %s", maxCPUs, shorten.Text(raw, 40))
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonError shortens the JSON library's messages to what a user needs.
func jsonError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s at byte %d", bytes.TrimPrefix([]byte(syntax.Error()), []byte("json: ")), syntax.Offset)
	}
	return err.Error()
}
