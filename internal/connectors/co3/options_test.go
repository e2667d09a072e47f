package co3

import (
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Format: "json"}, ""},
		{Options{Format: "xml", Owner: "jana"}, ""},
		{Options{Format: "yaml"}, `format: must be "json" or "xml" (got "yaml")`},
		{Options{Format: ""}, `format: must be "json" or "xml" (got "")`},
		{Options{Format: "json", Owner: " jana"}, `owner: must be a CO3 username`},
	}
	for _, c := range cases {
		errs := c.opts.Validate()
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%+v: unexpected %v", c.opts, errs)
		case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%+v: errors %v, want one saying %q", c.opts, errs, c.want)
		}
	}
	if o := Type.NewOptions().(*Options); o.Format != "json" || o.Owner != "" {
		t.Errorf("defaults = %+v", o)
	}
	var _ connectors.OptionsValidator = &Options{}
}

func TestNewChecksSettings(t *testing.T) {
	creds := map[string]string{"api_key": "k", "username": "u", "password": "p"}
	cases := []struct {
		name string
		s    connectors.Settings
		want string
	}{
		{"no base", connectors.Settings{Credentials: creds}, "base_url is required"},
		{"plain http", connectors.Settings{BaseURL: "http://co3app.com/api", Credentials: creds}, "base_url"},
		{"missing creds", connectors.Settings{BaseURL: "https://co3app.com/api", Credentials: map[string]string{"api_key": "k"}}, "missing credentials: username, password"},
		{"bad option", connectors.Settings{BaseURL: "https://co3app.com/api", Credentials: creds, Options: &Options{Format: "yaml"}}, `format: must be`},
	}
	for _, c := range cases {
		if _, err := New(c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	c, err := Type.New(connectors.Settings{BaseURL: "https://co3app.com/api/crm/", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.(*Connector); cc.crmURL != "https://co3app.com/api/crm" || cc.authURL != "https://co3app.com/api/authenticate" {
		t.Errorf("urls = %s, %s", cc.crmURL, cc.authURL)
	}
	if Type.Name != "co3" || !Type.NeedsBaseURL || Type.DefaultRate != 5 || Type.DefaultBurst != 5 || strings.Join(Type.Credentials, ",") != "api_key,username,password" {
		t.Errorf("Type = %+v", Type)
	}
}
