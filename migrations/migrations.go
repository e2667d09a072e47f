// Package migrations holds the state store's schema as numbered goose SQL
// migrations, embedded in the binary and applied when the store opens.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
