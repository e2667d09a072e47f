package vcarddir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// readFile gives a file's bytes and the stamp a listing gives it, so that
// a file read by a pull and passed over by the next one as unchanged are
// the same; a missing file is fs.ErrNotExist, a file over the limit gives
// its stamp and no data.
func TestReadFileGivesTheListingsStamp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.vcf")
	data := bytes.Repeat([]byte("BEGIN:VCARD\r\n"), 100)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, st, perm, err := readFile(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if perm != 0o600 {
		t.Errorf("permissions %v, want 0600", perm)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want %d", len(got), len(data))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := stampOf(info); st != want {
		t.Errorf("stamp %+v, want %+v", st, want)
	}
	if got, st, _, err := readFile(path, 10); err != nil || got != nil || st.size != int64(len(data)) {
		t.Errorf("over the limit: %d bytes, size %d, %v; want none, %d, nil", len(got), st.size, err, len(data))
	}
	if _, _, _, err := readFile(filepath.Join(dir, "gone.vcf"), 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
