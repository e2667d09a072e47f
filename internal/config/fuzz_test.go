package config

import (
	"strings"
	"testing"
)

// FuzzParse: no input panics the loader, and a rejected config always says
// what is wrong.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("state = 5\n"))
	f.Add([]byte("[[connectors]]\nname = \"a\"\n[[connectors.fields]]\n"))
	f.Add([]byte("[connectors]\noptions = 3\n"))
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := Parse(text, "/fuzz/config.toml", reg, env(map[string]string{"CRM_KEY": "k"}))
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if cfg == nil || cfg.State == "" || len(cfg.Connector) == 0 {
			t.Fatalf("accepted a config without state or connectors: %+v", cfg)
		}
	})
}
