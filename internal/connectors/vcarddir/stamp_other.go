//go:build !linux

package vcarddir

import (
	"io"
	"io/fs"
	"os"
)

// stampOf reads size and mtime (ctime is read on Linux only).
func stampOf(info fs.FileInfo) stamp {
	return stamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
}

// readFile reads a file whole (up to limit bytes) with its stamp and
// permissions as of the read. A file larger than limit gives its stamp and no data.
func readFile(path string, limit int64) ([]byte, stamp, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, stamp{}, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, stamp{}, 0, err
	}
	s, perm := stampOf(info), info.Mode().Perm()
	if info.Size() > limit {
		return nil, s, perm, nil
	}
	buf := make([]byte, info.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, stamp{}, 0, err
	}
	return buf[:n], s, perm, nil
}
