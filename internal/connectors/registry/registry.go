// Package registry lists every connector type syncd knows, by the name
// used in configs, and builds configured connectors.
package registry

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/carddav"
	"github.com/syncd/syncd/internal/connectors/clientapi"
	"github.com/syncd/syncd/internal/connectors/clientbook"
	"github.com/syncd/syncd/internal/connectors/co3"
	"github.com/syncd/syncd/internal/connectors/memory"
	"github.com/syncd/syncd/internal/connectors/opencrm"
	"github.com/syncd/syncd/internal/connectors/vcarddir"
	"github.com/syncd/syncd/internal/redact"
)

// Types returns the registry of connector types.
func Types() config.Registry {
	reg := config.Registry{}
	for _, t := range []connectors.Type{
		opencrm.Type,
		co3.Type,
		clientbook.Type,
		clientapi.Type,
		vcarddir.Type,
		carddav.Type,
		memory.Type,
	} {
		reg[t.Name] = t
	}
	return reg
}

// Built is one configured connector, ready to use.
type Built struct {
	Name      string
	Connector connectors.Connector
	Pacer     *connectors.Pacer
}

// BuildOptions carries what every connector shares.
type BuildOptions struct {
	Redactor *redact.Redactor
	Logger   *slog.Logger
	Now      func() time.Time
	// Observe receives every call attempt (metrics).
	Observe func(connectors.CallEvent)
}

// Build constructs every connector of cfg, in config order.
func Build(cfg *config.Config, o BuildOptions) ([]Built, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var out []Built
	for _, cc := range cfg.Connector {
		kind := cc.Kind
		if kind.New == nil {
			return nil, fmt.Errorf("connector %s: unknown type %q", cc.Name, cc.Type)
		}
		pacer := connectors.NewPacer(connectors.PacerConfig{
			Name:    cc.Name,
			Rate:    cc.Rate,
			Burst:   cc.Burst,
			Observe: o.Observe,
		})
		c, err := kind.New(connectors.Settings{
			Name:        cc.Name,
			BaseURL:     cc.BaseURL,
			Credentials: cc.Resolved,
			PageSize:    cc.PageSize,
			Options:     cc.TypeOptions,
			Pacer:       pacer,
			HTTP:        connectors.NewHTTPClient(cc.Timeout.Duration, o.Redactor),
			Logger:      o.Logger.With("connector", cc.Name),
			Now:         o.Now,
			ConfigDir:   cfg.Dir,
		})
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", cc.Name, o.Redactor.Error(err))
		}
		out = append(out, Built{Name: cc.Name, Connector: c, Pacer: pacer})
	}
	return out, nil
}
