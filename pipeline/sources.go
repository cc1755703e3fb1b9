package pipeline

import (
	"fmt"
	"io"
	"os"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/internal/shorten"
)

// openSources opens the files of the input sources given after "::::"
// ("-" is stdin), and returns the sources with their readers set, and
// close, which closes the files. A file that cannot be read, is a
// directory, or is --outfile is an error.
func (c *Config) openSources(stdin io.Reader) (sources []decode.Source, close func(), err error) {
	var opened []*os.File
	close = func() {
		for _, f := range opened {
			f.Close()
		}
	}
	sources = make([]decode.Source, len(c.Sources))
	for i, src := range c.Sources {
		sources[i] = src
		switch {
		case src.Values != nil:
			continue
		case src.Path == "-":
			sources[i].Reader = stdin
			continue
		}
		f, err := os.Open(src.Path)
		if err == nil {
			opened = append(opened, f)
			if info, serr := f.Stat(); serr == nil && info.IsDir() {
				err = fmt.Errorf("it is a directory")
			}
		}
		if err == nil && sameFile(f, c.Outfile) {
			err = fmt.Errorf("it is --outfile %s", c.Outfile)
		}
		if err != nil {
			close()
			return nil, nil, fmt.Errorf("cannot read :::: %s: %w", src.Path, shorten.Error(err))
		}
		sources[i].Reader = f
	}
	return sources, close, nil
}
