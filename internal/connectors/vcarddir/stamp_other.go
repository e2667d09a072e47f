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

// readFile reads a file whole (up to limit bytes) with its stamp as of
// the read. A file larger than limit gives its stamp and no data.
func readFile(path string, limit int64) ([]byte, stamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	s := stampOf(info)
	if info.Size() > limit {
		return nil, s, nil
	}
	buf := make([]byte, info.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, stamp{}, err
	}
	return buf[:n], s, nil
}
