//go:build !linux

package vcarddir

import "os"

// syncFiles makes the staged files' data durable, one fsync each.
func syncFiles(_ string, batch []staged) error {
	for _, st := range batch {
		f, err := os.Open(st.tmp)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// renameNoReplace is not available: the caller links.
func renameNoReplace(_, _ string) (bool, error) { return false, nil }
