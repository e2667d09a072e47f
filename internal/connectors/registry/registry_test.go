package registry

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/crmsim"
)

// The shipped example config documents every key and loads cleanly once
// its credential references resolve.
func TestExampleConfigLoads(t *testing.T) {
	text, err := os.ReadFile("../../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "co3.password"), []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "contacts"), 0o700); err != nil {
		t.Fatal(err)
	}
	envs := map[string]string{"OPENCRM_KEY": "k1", "OPENCRM_PASSKEY": "p1", "CO3_API_KEY": "a1",
		"CB_APP_ID": "i", "CB_APP_KEY": "k", "CB_TOKEN": "t", "CB_SECRET": "s", "HOSTING_API_KEY": "h"}
	cfg, err := config.Parse(text, filepath.Join(dir, "config.toml"), Types(), func(k string) (string, bool) { v, ok := envs[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	types := map[string]bool{}
	for _, c := range cfg.Connector {
		types[c.Type] = true
	}
	for name := range Types() {
		if !types[name] && name != "memory" && name != "carddav" {
			t.Errorf("the example config has no %s connector", name)
		}
	}
	if got := cfg.Connector[1].Resolved["password"]; got != "pw-from-file" {
		t.Errorf("file: reference resolved to %q", got)
	}
	if _, err := Build(cfg, BuildOptions{}); err != nil {
		t.Fatalf("Build: %v", err)
	}
}

// The demo config that crmsim writes uses the same field mappings as the
// shipped example, so what a newcomer sees is what they would deploy.
func TestDemoMappingsMatchExample(t *testing.T) {
	sim, err := crmsim.Start(crmsim.Options{People: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	demoText, err := sim.Config(crmsim.ConfigOptions{State: "x.db"})
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	type conn struct {
		Type   string           `toml:"type"`
		Fields []map[string]any `toml:"fields"`
	}
	var demo, ex struct {
		Connectors []conn `toml:"connectors"`
	}
	if _, err := toml.Decode(demoText, &demo); err != nil {
		t.Fatalf("demo config: %v", err)
	}
	if _, err := toml.Decode(string(example), &ex); err != nil {
		t.Fatal(err)
	}
	byType := map[string]string{}
	for _, c := range ex.Connectors {
		byType[c.Type] = strings.TrimSpace(toString(c.Fields))
	}
	if len(demo.Connectors) != 4 {
		t.Fatalf("demo config has %d connectors, want 4", len(demo.Connectors))
	}
	for _, c := range demo.Connectors {
		if got, want := strings.TrimSpace(toString(c.Fields)), byType[c.Type]; got != want {
			t.Errorf("%s: demo mappings differ from config.example.toml:\n demo: %s\n example: %s", c.Type, got, want)
		}
	}
	// And the demo config itself is valid.
	if _, err := config.Parse([]byte(demoText), filepath.Join(t.TempDir(), "c.toml"), Types(), os.LookupEnv); err != nil {
		t.Fatalf("demo config invalid:\n%v", err)
	}
}

func toString(v any) string {
	var b strings.Builder
	_ = toml.NewEncoder(&b).Encode(map[string]any{"f": v})
	return b.String()
}

// Client Book's use policy forbids asking for the user's Client Book
// username or password, and its API is to be called gently: the type
// declares only the app and token credentials, and a connector with no
// rate set makes at most 2 requests a second.
func TestClientBookTypeCredentialsAndRate(t *testing.T) {
	kind := Types()["clientbook"]
	if kind.DefaultRate != 2 || kind.DefaultBurst != 1 {
		t.Errorf("clientbook default rate %v/s, burst %d; want 2/s, burst 1", kind.DefaultRate, kind.DefaultBurst)
	}
	for _, k := range append(slices.Clone(kind.Credentials), kind.OptionalCredentials...) {
		if l := strings.ToLower(k); strings.Contains(l, "user") || strings.Contains(l, "pass") || strings.Contains(l, "login") {
			t.Errorf("clientbook declares credential %q", k)
		}
	}
	if want := []string{"app_id", "app_key", "token", "secret"}; !slices.Equal(kind.Credentials, want) || len(kind.OptionalCredentials) != 0 {
		t.Errorf("clientbook credentials %v (optional %v), want %v", kind.Credentials, kind.OptionalCredentials, want)
	}
	cfg, err := config.Parse([]byte(clientBookConfig), "/etc/syncd/config.toml", Types(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cc := cfg.Connector[0]; cc.Rate != 2 || cc.Burst != 1 {
		t.Errorf("a clientbook connector without rate runs at %v/s, burst %d; want 2/s, burst 1", cc.Rate, cc.Burst)
	}
}
