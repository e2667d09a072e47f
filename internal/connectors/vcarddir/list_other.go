//go:build !linux

package vcarddir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// walkDir calls fn for every regular file of dir, in the folder's own
// order, with its stamp when withStamps. A file removed between the
// listing and its stat is left out.
func walkDir(dir string, withStamps bool, fn func(name string, st stamp)) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		des, err := f.ReadDir(1024)
		for _, de := range des {
			name := de.Name()
			if !wanted([]byte(name)) || !de.Type().IsRegular() {
				continue
			}
			var st stamp
			if withStamps {
				info, err := os.Lstat(filepath.Join(dir, name))
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return err
				}
				st = stampOf(info)
			}
			fn(name, st)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
