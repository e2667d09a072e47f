//go:build !linux

package vcarddir

import (
	"io/fs"
	"os"
)

// stampOf reads size and mtime (ctime is read on Linux only).
func stampOf(info fs.FileInfo) stamp {
	return stamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
}

// lstamp is the stamp of the file at path, not following a symlink.
func lstamp(path string) (stamp, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return stamp{}, err
	}
	return stampOf(info), nil
}
