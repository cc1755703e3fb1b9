// Command pack writes the release archives and their checksums for
// "make dist", with nothing but Go, so that the same tree gives the same
// bytes on every machine, whichever tar, zip or sha256sum it has, if any.
//
//	pack ARCHIVE FILE...     write ARCHIVE (.tar.gz or .zip): the files, in a
//	                         folder named after it
//	pack -sums OUT FILE...   write OUT in sha256sum's format
//
// Every entry is dated SOURCE_DATE_EPOCH (seconds since 1970), or
// 1980-01-01 when it is unset, owned by root, and mode 0755 or 0644 as the
// file is executable or not.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) >= 3 && os.Args[1] == "-sums":
		err = writeFile(os.Args[2], func(w io.Writer) error { return sums(w, os.Args[3:]) })
	case len(os.Args) >= 3:
		err = pack(os.Args[1], os.Args[2:])
	default:
		err = errors.New("usage: pack ARCHIVE FILE..., or pack -sums OUT FILE...: see its doc")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pack: %v\n", err)
		os.Exit(1)
	}
}

// pack writes the files to archive, under a folder named after it.
func pack(archive string, files []string) error {
	modified, err := sourceDate()
	if err != nil {
		return err
	}
	base := filepath.Base(archive)
	switch {
	case strings.HasSuffix(base, ".tar.gz"):
		dir := strings.TrimSuffix(base, ".tar.gz") + "/"
		return writeFile(archive, func(w io.Writer) error { return writeTarGz(w, dir, files, modified) })
	case strings.HasSuffix(base, ".zip"):
		dir := strings.TrimSuffix(base, ".zip") + "/"
		return writeFile(archive, func(w io.Writer) error { return writeZip(w, dir, files, modified) })
	}
	return fmt.Errorf("%s: not a .tar.gz or .zip name", archive)
}

func writeTarGz(w io.Writer, dir string, files []string, modified time.Time) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: modified, Format: tar.FormatUSTAR}
	}
	if err := tw.WriteHeader(hdr(dir, 0o755, 0, tar.TypeDir)); err != nil {
		return err
	}
	for _, f := range files {
		data, mode, err := readFile(f)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(dir+filepath.Base(f), mode, int64(len(data)), tar.TypeReg)); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, dir string, files []string, modified time.Time) error {
	zw := zip.NewWriter(w)
	d := &zip.FileHeader{Name: dir, Method: zip.Store, Modified: modified}
	d.SetMode(os.ModeDir | 0o755)
	if _, err := zw.CreateHeader(d); err != nil {
		return err
	}
	for _, f := range files {
		data, mode, err := readFile(f)
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: dir + filepath.Base(f), Method: zip.Deflate, Modified: modified}
		h.SetMode(os.FileMode(mode))
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := fw.Write(data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// readFile returns the file's bytes and its mode in the archive.
func readFile(name string) ([]byte, int64, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: not a regular file", name)
	}
	data, err := os.ReadFile(name)
	mode := int64(0o644)
	if info.Mode().Perm()&0o111 != 0 || strings.HasSuffix(name, ".exe") {
		mode = 0o755
	}
	return data, mode, err
}

// sums writes a line "HASH  NAME" per file, as sha256sum does, with the
// file's base name, sorted by it.
func sums(w io.Writer, files []string) error {
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if _, err := fmt.Fprintf(w, "%s  %s\n", hex.EncodeToString(sum[:]), filepath.Base(f)); err != nil {
			return err
		}
	}
	return nil
}

// sourceDate is the time every entry is dated.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeFile writes name with write, whole or not at all.
func writeFile(name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".pack-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
