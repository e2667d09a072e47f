// Package connectors defines the seam between the sync engine and the CRMs.
//
// A connector speaks one CRM's API: URLs, authentication, paging, envelopes
// and error codes. It returns contacts under the CRM's own field names; the
// engine maps them to canonical fields (see internal/sync). Each CRM lives in
// a leaf package internal/connectors/<type>, with its emulator in
// internal/connectors/<type>/<type>test.
//
// Every remote call goes through one Pacer (rate limit, retries,
// Retry-After); connectors only classify errors.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Record is one contact as a connector holds it.
type Record struct {
	// ID is the CRM's id of the record, as a string.
	ID string
	// Fields holds the record's values under the CRM's own field names.
	// Nested values are flattened with dots ("custom_fields.colour").
	Fields map[string]string
	// Modified is the CRM's last-modified time of the record, or zero when
	// the CRM does not report one.
	Modified time.Time
	// Deleted is set when the CRM reports the record as deleted.
	Deleted bool
}

// Page is one batch of records from Pull.
type Page struct {
	Records []Record
	// Cursor is the connector's opaque position after this page. The engine
	// stores it in the same transaction as the page, and hands it back to
	// Pull after a crash so that the pull resumes after this page.
	Cursor string
	// Done is set on the last page of a pull. Cursor on the last page is the
	// starting point for the next incremental pull.
	Done bool
	// Total is the number of records the whole pull will return when the
	// connector knows it (for progress display), or -1.
	Total int
}

// PullOptions says where a pull starts.
type PullOptions struct {
	// Cursor is the value stored from the last page of the previous pull
	// (or from the last committed page of an interrupted pull). Empty means
	// start from the beginning.
	Cursor string
	// Full asks for every record regardless of Cursor.
	Full bool
}

// PageFunc receives pages in order. Returning an error stops the pull and
// Pull returns that error. The engine may still be storing a page when it
// asks for the next one: a connector must not reuse a page's slices or
// maps for later pages.
type PageFunc func(ctx context.Context, page Page) error

// Connector is what every connector implements: reading.
type Connector interface {
	// Pull streams the records changed since opts.Cursor (all records when
	// opts.Full or the cursor is empty), one page at a time. Connectors
	// without a change filter return every record; the engine drops
	// unchanged ones by content hash. Pull is safe to repeat.
	Pull(ctx context.Context, opts PullOptions, fn PageFunc) error
	// Get fetches one record. It returns an error wrapping ErrNotFound when
	// the record does not exist.
	Get(ctx context.Context, id string) (Record, error)
}

// Writer is implemented by connectors that can write.
type Writer interface {
	// Create creates a record and returns its id. Create is not retried
	// after the request may have reached the CRM; the engine recovers an
	// uncertain create by identity matching on the next pull.
	Create(ctx context.Context, fields map[string]string) (string, error)
	// Update changes only the given fields of the record.
	Update(ctx context.Context, id string, fields map[string]string) error
}

// Flusher is implemented by Writers that make writes durable in batches
// (a folder of files: one flush of the file system instead of two per
// file). The engine calls Flush after a batch of Create, Update and
// Delete calls and before it records their outcome; a write counts as
// done only once Flush returned nil for it. A *FlushError names the
// writes that failed; any other error fails every write of the batch.
type Flusher interface {
	Flush(ctx context.Context) error
}

// FlushError is the error of a Flush that completed some writes of the
// batch and not others: Failed holds the error of each failed write by
// record id (the id Create returned, or the id given to Update or
// Delete).
type FlushError struct {
	Failed map[string]error
}

func (e *FlushError) Error() string {
	for id, err := range e.Failed {
		return fmt.Sprintf("flush: %d writes failed, e.g. %s: %v", len(e.Failed), id, err)
	}
	return "flush: no write failed"
}

// CursorAdvancer is implemented by connectors that can tell their next
// incremental pull to pass over their own writes (a folder of files,
// where a write looks like any other change). After a run's writes are
// recorded, the engine gives it the cursor of that run's finished pull
// and stores the cursor it returns in its place.
type CursorAdvancer interface {
	AdvanceCursor(cursor string) (string, error)
}

// IDLister is implemented by connectors that can list every record id
// cheaply. A complete listing is what deletion detection compares with.
type IDLister interface {
	ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error
}

// Counter is implemented by IDListers that can count every record in one
// call. After an incremental pull the engine compares the count with the
// live records it holds for the connector and runs the complete id
// listing only when the two differ: an incremental pull has stored every
// record that existed when it ran, so equal counts mean nothing was
// deleted (or as many records were deleted as were created after the
// pull; those deletions are found by a later run, once the new records
// have been pulled).
type Counter interface {
	Count(ctx context.Context) (int, error)
}

// Deleter is implemented by connectors that can delete records.
type Deleter interface {
	Delete(ctx context.Context, id string) error
}

// Closer is implemented by connectors holding resources.
type Closer interface {
	Close() error
}

// Sentinel errors. Connectors wrap them (with %w) so that callers test the
// class with errors.Is and still see the CRM's message.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAuth: credentials are wrong, revoked or disabled. Permanent: the
	// connector stops for this run.
	ErrAuth = errors.New("authentication failed")
	// ErrRateLimited: the CRM asked to slow down (HTTP 429 or 503).
	ErrRateLimited = errors.New("rate limited")
	// ErrTemporary: a failure worth retrying (5xx, timeout, reset).
	ErrTemporary = errors.New("temporary failure")
	// ErrSessionExpired: a session or access key expired; the connector
	// renews it once and repeats the call.
	ErrSessionExpired = errors.New("session expired")
	// ErrMalformed: the CRM's reply could not be understood.
	ErrMalformed = errors.New("malformed reply")
	// ErrRejected: the CRM refused the record (validation); the record goes
	// to the failed list with the CRM's message.
	ErrRejected = errors.New("rejected by the CRM")
	// ErrUnsupported: the connector cannot do this (a pull-only CRM).
	ErrUnsupported = errors.New("not supported")
)

// RetryAfterError carries the delay a CRM asked for.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Direction says which ways data flows for one connector.
type Direction string

const (
	Both Direction = "both"
	Pull Direction = "pull"
	Push Direction = "push"
)

// Settings of one configured connector, as the engine hands them to a
// connector type's New.
type Settings struct {
	// Name is the connector's unique name in the config.
	Name string
	// BaseURL is the API's base URL (already checked by ValidateBaseURL).
	BaseURL string
	// Credentials are resolved values by key (references already read).
	Credentials map[string]string
	// PageSize is the page size to request (0: the type's default).
	PageSize int
	// Options is the value returned by the type's NewOptions after the
	// config's [connectors.options] table was decoded into it.
	Options any
	// Pacer carries every remote call.
	Pacer *Pacer
	// HTTP is the HTTP client to use: TLS 1.2+, redacting errors.
	HTTP *HTTPClient
	// Logger is the connector's logger (secrets redacted by the handler).
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// ConfigDir is the folder of the config file, for relative paths.
	ConfigDir string
}

// Type describes a connector type for the registry.
type Type struct {
	// Name is the type name used in configs ("opencrm").
	Name string
	// Description is one line for help output.
	Description string
	// PullOnly types refuse direction "both" and "push" in validation.
	PullOnly bool
	// DefaultRate and DefaultBurst apply when the config gives no rate.
	DefaultRate  float64
	DefaultBurst int
	// NeedsBaseURL is set for types that talk HTTP.
	NeedsBaseURL bool
	// Credentials lists the credential keys the type needs; validation
	// reports missing ones. Optional keys are listed in OptionalCredentials.
	Credentials         []string
	OptionalCredentials []string
	// NewOptions returns a pointer to the type's options struct with its
	// defaults set; the config loader decodes [connectors.options] into it
	// and reports unknown keys. Nil when the type has no options.
	NewOptions func() any
	// ExcludedFields lists CRM fields that the server changes by itself and
	// that are left out of change detection by default ("lastlogin").
	ExcludedFields []string
	// New builds a connector.
	New func(s Settings) (Connector, error)
}

// OptionsValidator is implemented by options structs that check themselves.
// Each problem is reported as "key: what is wrong (got "value")"; the
// config loader prefixes the path.
type OptionsValidator interface {
	Validate() []error
}
