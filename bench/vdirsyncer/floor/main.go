//go:build linux

// Command floor does the file work of the vdirsyncer comparison's steps
// and nothing else: no parsing, no matching, no state. Its times are what
// the file system alone costs any tool that writes atomically and
// durably, so they bound the speed-up any such tool can have over another
// on the same machine (bench/vdirsyncer/run.sh prints them beside both
// tools' figures).
//
//	floor -first A B    copy every .vcf file of A into B
//	floor -noop A B     list both folders at once (a stat per file)
//	floor -edits A B    list both folders at once, then copy
//	                    each folder's most recently changed 1% of files
//	                    over the other folder's files of the same name
//
// A copy reads the source file, writes a hidden temporary file next to
// the target and renames it into place; after the copies, one syncfs(2)
// makes the target folder's data durable and one fsync the folder's
// entries. That is less than either tool does per file: syncd makes the
// same calls for a file (its batches of 200 add a syncfs and a folder
// fsync each), vdirsyncer an fsync per file.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	first := flag.Bool("first", false, "copy every file of the first folder into the second")
	noop := flag.Bool("noop", false, "list both folders")
	edits := flag.Bool("edits", false, "list both folders and copy each one's newest 1% of files into the other")
	flag.Parse()
	modes := 0
	for _, m := range []bool{*first, *noop, *edits} {
		if m {
			modes++
		}
	}
	if flag.NArg() != 2 || modes != 1 {
		fmt.Fprintln(os.Stderr, "usage: floor -first|-noop|-edits FOLDER FOLDER")
		os.Exit(2)
	}
	a, b := flag.Arg(0), flag.Arg(1)
	var err error
	switch {
	case *first:
		var names []file
		if names, err = list(a); err == nil {
			err = copyAll(a, b, names)
		}
	case *noop:
		_, _, err = listBoth(a, b)
	default:
		err = copyNewest(a, b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

type file struct {
	name  string
	mtime int64
}

// list stats every .vcf file of dir, as a listing that detects changes
// by size and modification time must.
func list(dir string) ([]file, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []file
	var st unix.Stat_t
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".vcf") {
			continue
		}
		if err := unix.Lstat(filepath.Join(dir, e.Name()), &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", e.Name(), err)
		}
		files = append(files, file{e.Name(), st.Mtim.Nano()})
	}
	return files, nil
}

// listBoth lists two folders at once, as a tool can.
func listBoth(a, b string) (fa, fb []file, err error) {
	var errB error
	done := make(chan struct{})
	go func() {
		defer close(done)
		fb, errB = list(b)
	}()
	fa, err = list(a)
	<-done
	return fa, fb, cmp.Or(err, errB)
}

// copyNewest lists both folders, then copies each one's newest 1% of
// files into the other.
func copyNewest(a, b string) error {
	fa, fb, err := listBoth(a, b)
	if err != nil {
		return err
	}
	newest := func(files []file) []file {
		slices.SortFunc(files, func(x, y file) int { return cmp.Compare(y.mtime, x.mtime) })
		return files[:len(files)/100]
	}
	if err := copyAll(a, b, newest(fa)); err != nil {
		return err
	}
	return copyAll(b, a, newest(fb))
}

// copyAll copies the named files of from into to, each through a
// temporary file and a rename, then makes them durable.
func copyAll(from, to string, files []file) error {
	for i, f := range files {
		data, err := os.ReadFile(filepath.Join(from, f.name))
		if err != nil {
			return err
		}
		tmp := filepath.Join(to, "."+f.name+".tmp-"+strconv.Itoa(i))
		fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		for len(data) > 0 {
			var n int
			if n, err = unix.Write(fd, data); err != nil {
				break
			}
			data = data[n:]
		}
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := unix.Rename(tmp, filepath.Join(to, f.name)); err != nil {
			return fmt.Errorf("rename %s: %w", tmp, err)
		}
	}
	d, err := unix.Open(to, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", to, err)
	}
	defer unix.Close(d)
	if err := unix.Syncfs(d); err != nil {
		return fmt.Errorf("syncfs %s: %w", to, err)
	}
	if err := unix.Fsync(d); err != nil {
		return fmt.Errorf("fsync %s: %w", to, err)
	}
	return nil
}
