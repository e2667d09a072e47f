package memory

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

// emu drives a memory connector's table and hooks as the contract suite's
// emulator.
type emu struct{ c *Connector }

func (e emu) Seed(f map[string]string) string { return strconv.FormatInt(e.c.Table.Insert(f), 10) }
func (e emu) EditAsUser(id string, f map[string]string) {
	n, _ := strconv.ParseInt(id, 10, 64)
	e.c.Table.Update(n, f)
}
func (e emu) Fields(id string) (map[string]string, bool) {
	n, _ := strconv.ParseInt(id, 10, 64)
	r, ok := e.c.Table.Get(n)
	return r.Fields, ok
}
func (e emu) Advance(d time.Duration)                         { e.c.Table.Clock.Advance(d) }
func (e emu) FailNext(method string, n int, f emulator.Fault) { e.c.Hooks.FailNext(method, n, f) }
func (e emu) Calls(method string) int                         { return e.c.Hooks.Calls(method) }

func TestContract(t *testing.T) {
	newConn := func(t *testing.T) (*Connector, emu) {
		c := New(emulator.NewTable(&emulator.Clock{}), 4)
		c.Pacer = connectors.NewPacer(connectors.PacerConfig{Name: "memory"})
		return c, emu{c}
	}
	contract.Run(t, contract.Harness{
		New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			c, e := newConn(t)
			return c, e
		},
		NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			c, e := newConn(t)
			c.Hooks.FailNext("list", 1, emulator.Fault{Status: 401})
			return c, e
		},
		PageSize:    4,
		GivenField:  "first",
		FamilyField: "last",
		EmailField:  "email",
		ListMethod:  "list",
		Incremental: true,
	})
}

// A memory connector is seeded from inline records and from a JSON file
// (relative to the config's folder); a missing or malformed file is an
// error naming it.
func TestSeeding(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.json"), []byte(`[{"first":"Zoë","email":"zoe@example.org"},{"first":"Łukasz"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := &Options{SeedFile: "people.json", Seed: []map[string]string{{"first": "Ann", "email": "ann@example.org"}}}
	c, err := Type.New(connectors.Settings{Name: "m", Options: opts, ConfigDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = c.Pull(context.Background(), connectors.PullOptions{}, func(_ context.Context, p connectors.Page) error {
		for _, r := range p.Records {
			got = append(got, r.Fields["first"])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"Ann", "Zoë", "Łukasz"}; !slices.Equal(got, want) {
		t.Errorf("seeded %v, want %v", got, want)
	}
	for name, body := range map[string]string{"missing.json": "", "bad.json": `{"first":"not an array"}`} {
		if body != "" {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Type.New(connectors.Settings{Name: "m", Options: &Options{SeedFile: name}, ConfigDir: dir})
		if err == nil || !strings.Contains(err.Error(), "seed file") {
			t.Errorf("seed file %s: err = %v, want an error naming the seed file", name, err)
		}
	}
}
