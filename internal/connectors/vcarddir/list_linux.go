package vcarddir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// direntBufSize is the getdents buffer: a few hundred entries per call.
const direntBufSize = 32 << 10

// walkDir calls fn for every regular file of dir, in the folder's own
// order, with its stamp when withStamps. It reads the folder with
// getdents(2) into one buffer and stamps each file with fstatat(2)
// relative to the open folder: no per-entry allocation but the name, and
// no path walk per file. A file removed between the listing and its stat
// is left out. Entries whose type the file system does not report are
// stat-ed to learn it.
func walkDir(dir string, withStamps bool, fn func(name string, st stamp)) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, direntBufSize)
	var st unix.Stat_t
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16,
			// type u8, name (NUL-terminated).
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 20 || off+reclen > n {
				return &fs.PathError{Op: "getdents", Path: dir, Err: errors.New("malformed directory entry")}
			}
			typ := buf[off+18]
			nb := buf[off+19 : off+reclen]
			off += reclen
			if i := bytes.IndexByte(nb, 0); i >= 0 {
				nb = nb[:i]
			}
			if typ != unix.DT_REG && typ != unix.DT_UNKNOWN || !wanted(nb) {
				continue
			}
			name := string(nb)
			if !withStamps && typ == unix.DT_REG {
				fn(name, stamp{})
				continue
			}
			if err := fstatat(fd, name, &st); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return &fs.PathError{Op: "lstat", Path: dir + string(os.PathSeparator) + name, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			fn(name, stamp{size: st.Size, mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec, ino: st.Ino})
		}
	}
}

func fstatat(fd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(fd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
