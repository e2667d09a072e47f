// Package vcarddirtest is the vcarddir connector's emulator: a folder of
// .vcf files edited "as a user" (as another vdir tool would), with the
// connector's fault hooks. It implements contract.Emulator.
package vcarddirtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/vcarddir"
	"github.com/syncd/syncd/internal/connectors/vcardmap"
)

// Folder is a folder of contacts and the connector whose hooks fail calls.
type Folder struct {
	Dir     string
	Version string
	// Conn's Hooks carry FailNext and Calls.
	Conn *vcarddir.Connector
}

// Seed writes a new card with fields and returns its id (the UID).
func (f *Folder) Seed(fields map[string]string) string {
	uid := vcardmap.NewUID()
	c := vcardmap.New(uid, f.version())
	if err := c.Apply(fields); err != nil {
		panic(fmt.Sprintf("vcarddirtest: seed: %v", err))
	}
	c.EnsureFN()
	f.write(uid, c.Encode())
	return uid
}

// SeedRaw writes a file as is under name.vcf.
func (f *Folder) SeedRaw(name string, data []byte) {
	f.write(name, data)
}

// EditAsUser rewrites fields of a card in place, as an editor would.
func (f *Folder) EditAsUser(id string, fields map[string]string) {
	c, err := vcardmap.Parse(f.raw(id))
	if err != nil {
		panic(fmt.Sprintf("vcarddirtest: edit %s: %v", id, err))
	}
	if err := c.Apply(fields); err != nil {
		panic(fmt.Sprintf("vcarddirtest: edit %s: %v", id, err))
	}
	f.write(id, c.Encode())
}

// Delete removes a card as a user would.
func (f *Folder) Delete(id string) {
	if err := os.Remove(f.path(id)); err != nil {
		panic(fmt.Sprintf("vcarddirtest: delete %s: %v", id, err))
	}
}

// flush puts the connector's staged writes in place, as the engine does
// after each batch, so that the folder shows what was written.
func (f *Folder) flush() {
	if f.Conn != nil {
		_ = f.Conn.Flush(context.Background())
	}
}

// Fields returns a card's fields (after flushing the connector's writes).
func (f *Folder) Fields(id string) (map[string]string, bool) {
	f.flush()
	b, err := os.ReadFile(f.path(id))
	if err != nil {
		return nil, false
	}
	c, err := vcardmap.Parse(b)
	if err != nil {
		return nil, false
	}
	return c.Fields(), true
}

// Raw returns a card's file contents (nil when missing), after flushing
// the connector's writes.
func (f *Folder) Raw(id string) []byte {
	f.flush()
	b, _ := os.ReadFile(f.path(id))
	return b
}

// Advance does nothing: file times come from the real clock.
func (f *Folder) Advance(time.Duration) {}

// FailNext makes the next n calls of method fail with fault.
func (f *Folder) FailNext(method string, n int, fault emulator.Fault) {
	f.Conn.Hooks.FailNext(method, n, fault)
}

// Calls counts the connector's calls of method ("*": all).
func (f *Folder) Calls(method string) int { return f.Conn.Hooks.Calls(method) }

func (f *Folder) version() string {
	if f.Version == "" {
		return "3.0"
	}
	return f.Version
}

func (f *Folder) path(id string) string { return filepath.Join(f.Dir, id+vcarddir.Ext) }

func (f *Folder) raw(id string) []byte {
	b, err := os.ReadFile(f.path(id))
	if err != nil {
		panic(fmt.Sprintf("vcarddirtest: %v", err))
	}
	return b
}

func (f *Folder) write(name string, data []byte) {
	if err := os.WriteFile(f.path(name), data, 0o600); err != nil {
		panic(fmt.Sprintf("vcarddirtest: %v", err))
	}
}
