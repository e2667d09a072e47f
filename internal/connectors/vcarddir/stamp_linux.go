package vcarddir

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
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

// readFile reads a file whole (up to limit bytes) with its stamp and
// permissions as of the read. It makes the system calls itself: os.Open
// also tries to add every file to the network poller and sets its flags
// back and forth, which nearly doubled the time to read a folder of
// 10,000 cards.
// A file larger than limit gives its stamp and no data.
func readFile(path string, limit int64) ([]byte, stamp, fs.FileMode, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, stamp{}, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, stamp{}, 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	s := stamp{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino}
	perm := fs.FileMode(st.Mode).Perm()
	if st.Size > limit {
		return nil, s, perm, nil
	}
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, stamp{}, 0, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break // shorter than when it was stat'ed
		}
		n += m
	}
	return buf[:n], s, perm, nil
}
