package shorten_test

import (
	"fmt"
	"os"

	"github.com/workerpool/workerpool/internal/shorten"
)

func Example() {
	fmt.Println(shorten.Text(`{"command":"echo","args":["a very long argument indeed"]}`, 40))
	fmt.Println(shorten.LastLine("Warning: added to known hosts\nPermission denied (publickey).\n", 200))
	_, err := os.Open("/no/such/file")
	fmt.Printf("cannot read --infile /no/such/file: %v\n", shorten.Error(err))
	// Output:
	// {"command":"echo","args":["a very long a...
	// Permission denied (publickey).
	// cannot read --infile /no/such/file: no such file or directory
}
