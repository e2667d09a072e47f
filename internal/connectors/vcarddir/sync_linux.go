package vcarddir

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes the staged files' data durable with one syncfs(2) of
// the folder's file system: one journal commit for the whole batch where
// an fsync per file would make one each. syncfs reports write-back
// errors since Linux 5.8.
func syncFiles(dir string, _ []staged) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		err := unix.Syncfs(int(d.Fd()))
		if err != unix.EINTR {
			return os.NewSyscallError("syncfs", err)
		}
	}
}

// renameNoReplace moves tmp to final unless final exists (fs.ErrExist):
// renameat2(RENAME_NOREPLACE), one call where link and unlink are two.
// ok is false where the file system does not support it.
func renameNoReplace(tmp, final string) (ok bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	switch err {
	case nil:
		return true, nil
	case unix.EINVAL, unix.ENOSYS, unix.ENOTSUP:
		return false, nil
	}
	return true, &os.LinkError{Op: "renameat2", Old: tmp, New: final, Err: err}
}
