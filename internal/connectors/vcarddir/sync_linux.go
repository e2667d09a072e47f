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
