package decode_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/workerpool/workerpool/decode"
)

// The decoder streams tasks from NDJSON (or a JSON array); a task it cannot
// understand still comes through, with Err set, so that it gets a result.
func Example() {
	input := `{"identifier": "a", "command": "echo", "args": ["hi"]}
{"command": "true", "arg": ["typo"]}
`
	dec := decode.New(strings.NewReader(input), decode.Options{})
	for t := range dec.Stream(context.Background()) {
		fmt.Println(t.Seq, t.Identifier, t.Command, t.Args, t.Err)
	}
	fmt.Println("error:", dec.Err())
	// Output:
	// 1 a echo [hi] <nil>
	// 2 2  [] task "2" (line 2): unknown field "arg" (put your own data in "meta")
	// error: <nil>
}
