package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPack writes each kind of archive twice, from files in different
// folders and with different times on disk, and reads it back: the same
// bytes, the files in a folder named after the archive, dated
// SOURCE_DATE_EPOCH, 0755 or 0644; and SHA256SUMS as sha256sum writes it.
// The files are those make dist packs beside the binary: the repository's
// README.md and LICENSE.
func TestPack(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	want := time.Unix(1700000000, 0).UTC()
	var archives [2]map[string][]byte
	for i := range archives {
		src, out := t.TempDir(), t.TempDir()
		prog := filepath.Join(src, "prog")
		must(t, os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o700))
		files := []string{prog}
		for _, name := range []string{"README.md", "LICENSE"} {
			data, err := os.ReadFile(filepath.Join("..", "..", "..", name))
			must(t, err)
			doc := filepath.Join(src, name)
			must(t, os.WriteFile(doc, data, 0o600))
			must(t, os.Chtimes(doc, time.Now(), time.Now().Add(time.Duration(i)*time.Hour)))
			files = append(files, doc)
		}
		archives[i] = map[string][]byte{}
		for _, name := range []string{"w-1-linux-amd64.tar.gz", "w-1-windows-amd64.zip"} {
			must(t, pack(filepath.Join(out, name), files))
			data, err := os.ReadFile(filepath.Join(out, name))
			must(t, err)
			archives[i][name] = data
		}
	}
	for name, data := range archives[0] {
		if !bytes.Equal(data, archives[1][name]) {
			t.Errorf("%s: not the same bytes twice", name)
		}
	}

	got := map[string]string{}
	gz, err := gzip.NewReader(bytes.NewReader(archives[0]["w-1-linux-amd64.tar.gz"]))
	must(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if !h.ModTime.Equal(want) {
			t.Errorf("%s dated %v", h.Name, h.ModTime)
		}
		got["tar "+h.Name] = os.FileMode(h.Mode).String()
	}
	zr, err := zip.NewReader(bytes.NewReader(archives[0]["w-1-windows-amd64.zip"]), int64(len(archives[0]["w-1-windows-amd64.zip"])))
	must(t, err)
	for _, f := range zr.File {
		if !f.Modified.Equal(want) {
			t.Errorf("%s dated %v", f.Name, f.Modified)
		}
		got["zip "+f.Name] = f.Mode().String()
	}
	for entry, mode := range map[string]string{
		"tar w-1-linux-amd64/": "-rwxr-xr-x", "tar w-1-linux-amd64/prog": "-rwxr-xr-x",
		"tar w-1-linux-amd64/README.md": "-rw-r--r--", "tar w-1-linux-amd64/LICENSE": "-rw-r--r--",
		"zip w-1-windows-amd64/": "drwxr-xr-x", "zip w-1-windows-amd64/prog": "-rwxr-xr-x",
		"zip w-1-windows-amd64/README.md": "-rw-r--r--", "zip w-1-windows-amd64/LICENSE": "-rw-r--r--",
	} {
		if got[entry] != mode {
			t.Errorf("%s: mode %q, want %q (entries: %v)", entry, got[entry], mode, got)
		}
	}
	if len(got) != 8 {
		t.Errorf("entries: %v", got)
	}

	dir := t.TempDir()
	a, b := filepath.Join(dir, "b.zip"), filepath.Join(dir, "a.tar.gz")
	must(t, os.WriteFile(a, []byte("x"), 0o644))
	must(t, os.WriteFile(b, nil, 0o644))
	var sumsOut bytes.Buffer
	must(t, sums(&sumsOut, []string{a, b}))
	wantSums := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.tar.gz\n" +
		"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  b.zip\n"
	if sumsOut.String() != wantSums {
		t.Errorf("sums:\n%s\nwant:\n%s", sumsOut.String(), wantSums)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
