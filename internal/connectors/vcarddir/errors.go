package vcarddir

import (
	"io"
	"syscall"
)

var (
	errEOF = io.EOF
	// errSyncUnsupported: some file systems cannot fsync a folder.
	errSyncUnsupported = syscall.EINVAL
	errNotDir          = syscall.ENOTDIR
)
