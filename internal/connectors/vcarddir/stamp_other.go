//go:build !linux

package vcarddir

import "io/fs"

// stampOf reads size and mtime (ctime is read on Linux only).
func stampOf(info fs.FileInfo) stamp {
	return stamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
}
