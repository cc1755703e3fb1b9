package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/internal/shorten"
)

// openJournal opens --outfile to resume from and append to, locked for the
// run as openLocked locks it, and reads it. A journal that holds lines
// compaction drops is first replaced by its compacted copy, whole or not
// at all, so that resuming again and again does not make it grow for ever.
// It is opened without O_APPEND, which on Windows leaves no right to
// truncate it (repairing a torn line); the results go at its end, as the
// lock keeps every other writer out.
func (c *Config) openJournal() (*output, encode.Journal, error) {
	f, err := openLocked(c.Outfile, os.O_RDWR)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open --outfile %s: %w", c.Outfile, shorten.Error(err))
	}
	journal, compaction, err := encode.ReadJournal(f)
	if err == nil && isRegular(f) {
		if compaction.Drops() > 0 && replacesOpenFiles {
			var compacted *os.File
			if compacted, err = compactJournal(f, c.Outfile, compaction); err == nil {
				f.Close()
				f = compacted
			}
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekEnd)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("--resume: %w", err)
	}
	return &output{w: f, finish: func(bool) error { return f.Close() }}, journal, nil
}

// compactJournal writes what compaction keeps of the journal f, at path,
// to a new file in the same directory, locked, and puts it in the
// journal's place. It returns the new file, to append to. Locked before it
// has the journal's name, the journal is never without its lock: a second
// pool that opens the new file is refused, and one that opened the old one
// finds it replaced (openLocked) and opens the new one, to be refused.
func compactJournal(f *os.File, path string, compaction *encode.Compaction) (*os.File, error) {
	target, err := resolveLinks(path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	tmp, p, err := createUnnamed(filepath.Dir(target))
	if err != nil {
		return nil, fmt.Errorf("cannot compact the journal: %w", err)
	}
	err = lockFile(tmp)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err == nil {
		err = compaction.Write(tmp, f)
	}
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = p.place(target)
	}
	if err != nil {
		p.discard()
		tmp.Close()
		return nil, fmt.Errorf("cannot compact the journal: %w", err)
	}
	return tmp, nil
}

// isRegular says whether f is a regular file, one that may be replaced.
func isRegular(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode().IsRegular()
}
