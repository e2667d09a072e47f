package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors/registry"
)

// FuzzParse: no input panics the loader with the real connector types
// (each type's options, validators and credential lists), a rejected
// config always says what is wrong, and an accepted one is complete.
// It is an external test package so that it can import the registry,
// which imports config.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, typ := range []string{"opencrm", "co3", "clientbook", "clientapi", "vcarddir", "carddav", "memory"} {
		f.Add([]byte("state = \"s.db\"\n[[connectors]]\nname = \"c\"\ntype = \"" + typ + "\"\n" +
			"base_url = \"https://crm.example.com/api\"\ncredentials = { key = \"env:CRM_KEY\" }\n" +
			"[connectors.options]\ntime_zone = \"Europe/London\"\n" +
			"[[connectors.fields]]\ncanonical = \"email\"\nremote = \"email\"\ntransforms = [\"lower\"]\n"))
	}
	f.Add([]byte("state = 5\n"))
	f.Add([]byte("[[connectors]]\nname = \"a\"\n[[connectors.fields]]\n"))
	f.Add([]byte("[connectors]\noptions = 3\n"))
	reg := registry.Types()
	vars := map[string]string{"CRM_KEY": "k", "OPENCRM_KEY": "k1", "OPENCRM_PASSKEY": "p1", "CO3_API_KEY": "a1",
		"CB_APP_ID": "i", "CB_APP_KEY": "k", "CB_TOKEN": "t", "CB_SECRET": "s", "HOSTING_API_KEY": "h"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := config.Parse(text, "/fuzz/config.toml", reg, lookup)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.TrimSpace(line) == "" {
					t.Fatalf("an empty line in the error:\n%v", err)
				}
			}
			return
		}
		if cfg == nil || cfg.State == "" || len(cfg.Connector) == 0 {
			t.Fatalf("accepted a config without state or connectors: %+v", cfg)
		}
		for _, cc := range cfg.Connector {
			if cc.Kind.Name != cc.Type || cc.Kind.New == nil {
				t.Fatalf("accepted connector %q of type %q without its registry entry", cc.Name, cc.Type)
			}
		}
		_ = cfg.Summary()
	})
}
