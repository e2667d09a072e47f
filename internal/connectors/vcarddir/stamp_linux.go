package vcarddir

import (
	"io/fs"
	"syscall"
)

// stampOf reads size, mtime, ctime and inode number. ctime cannot be set by tools that
// preserve modification times (cp -p, rsync -t, tar), so a file restored
// with an old mtime still counts as changed.
func stampOf(info fs.FileInfo) stamp {
	s := stamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		s.ino = st.Ino
	}
	return s
}
