package carddav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

const (
	nsDAV     = "DAV:"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
)

// multistatus is a 207 reply (RFC 4918 14.16, RFC 6578 for sync-token).
type multistatus struct {
	XMLName   xml.Name   `xml:"DAV: multistatus"`
	Responses []response `xml:"DAV: response"`
	SyncToken string     `xml:"DAV: sync-token"`
}

type response struct {
	Hrefs     []string   `xml:"DAV: href"`
	Status    string     `xml:"DAV: status"`
	Propstats []propstat `xml:"DAV: propstat"`
}

type propstat struct {
	Status string `xml:"DAV: status"`
	Prop   prop   `xml:"DAV: prop"`
}

type prop struct {
	ETag                 string        `xml:"DAV: getetag"`
	LastModified         string        `xml:"DAV: getlastmodified"`
	ResourceType         *resourceType `xml:"DAV: resourcetype"`
	CurrentUserPrincipal *hrefProp     `xml:"DAV: current-user-principal"`
	HomeSet              *hrefProp     `xml:"urn:ietf:params:xml:ns:carddav addressbook-home-set"`
	AddressData          *string       `xml:"urn:ietf:params:xml:ns:carddav address-data"`
}

type resourceType struct {
	Collection  *struct{} `xml:"DAV: collection"`
	AddressBook *struct{} `xml:"urn:ietf:params:xml:ns:carddav addressbook"`
}

type hrefProp struct {
	Href string `xml:"DAV: href"`
}

// okProp merges the props of the response's 200 propstats.
func (r *response) okProp() prop {
	var p prop
	for _, ps := range r.Propstats {
		if ps.Status != "" && statusCode(ps.Status) != http.StatusOK {
			continue
		}
		q := ps.Prop
		if q.ETag != "" {
			p.ETag = q.ETag
		}
		if q.LastModified != "" {
			p.LastModified = q.LastModified
		}
		if q.ResourceType != nil {
			p.ResourceType = q.ResourceType
		}
		if q.CurrentUserPrincipal != nil {
			p.CurrentUserPrincipal = q.CurrentUserPrincipal
		}
		if q.HomeSet != nil {
			p.HomeSet = q.HomeSet
		}
		if q.AddressData != nil {
			p.AddressData = q.AddressData
		}
	}
	return p
}

// statusCode reads "HTTP/1.1 404 Not Found"; 0 when unreadable.
func statusCode(s string) int {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	n := 0
	for _, ch := range f[1] {
		if ch < '0' || ch > '9' {
			return 0
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// decodeMultistatus parses a 207 body.
func decodeMultistatus(body []byte) (*multistatus, error) {
	var ms multistatus
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	if err := dec.Decode(&ms); err != nil {
		return nil, fmt.Errorf("%w: not a WebDAV multistatus: %v", connectors.ErrMalformed, err)
	}
	for i, r := range ms.Responses {
		if len(r.Hrefs) == 0 {
			return nil, fmt.Errorf("%w: response %d has no href", connectors.ErrMalformed, i)
		}
	}
	return &ms, nil
}

// member is one address object of a listing.
type member struct {
	name     string // the last path segment, unescaped: the record id
	href     string // path as the server wrote it
	etag     string
	modified time.Time
}

// hrefPath returns the unescaped path of an href (absolute URL or path).
func hrefPath(href string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", fmt.Errorf("%w: bad href %q", connectors.ErrMalformed, href)
	}
	return u.Path, nil
}

// memberName returns the name of href when it is directly inside the
// collection bookPath (unescaped, with trailing slash), or "".
func memberName(bookPath, href string) (string, error) {
	p, err := hrefPath(href)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(p, bookPath) {
		return "", nil
	}
	rest := p[len(bookPath):]
	if rest == "" || strings.Contains(rest, "/") {
		return "", nil
	}
	return rest, nil
}

func parseHTTPTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// errPrecondition is a 412 inside a pacer call; it is not retried there.
var errPrecondition = errors.New("precondition failed")

// errSyncToken: the server refused the sync token or the sync report.
var errSyncToken = errors.New("sync-collection refused")

// do sends one request through the pacer and classifies its status.
// okStatus lists the statuses that mean success.
func (c *Connector) do(ctx context.Context, method string, kind connectors.CallKind, verb string, u *url.URL, header http.Header, body []byte, okStatus ...int) (*connectors.Response, error) {
	var resp *connectors.Response
	err := c.pacer.Call(ctx, method, kind, func(ctx context.Context) error {
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		var req *http.Request
		var err error
		if rd != nil {
			req, err = http.NewRequestWithContext(ctx, verb, u.String(), rd)
		} else {
			req, err = http.NewRequestWithContext(ctx, verb, u.String(), nil)
		}
		if err != nil {
			return fmt.Errorf("carddav: %s: %v", method, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.SetBasicAuth(c.username, c.password)
		r, err := c.http.Do(ctx, req)
		if err != nil {
			return fmt.Errorf("carddav: %s: %w", method, err)
		}
		for _, s := range okStatus {
			if r.Status == s {
				resp = r
				return nil
			}
		}
		return c.statusError(method, verb, u, r)
	})
	return resp, err
}

// statusError classifies an unexpected status.
func (c *Connector) statusError(method, verb string, u *url.URL, r *connectors.Response) error {
	where := fmt.Sprintf("carddav: %s: %s %s: HTTP %d", method, verb, c.http.Redactor.URL(u), r.Status)
	switch {
	case r.Status == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w: wrong username or password", where, connectors.ErrAuth)
	case r.Status == http.StatusPreconditionFailed:
		return errPrecondition
	case r.Status == http.StatusNotFound || r.Status == http.StatusGone:
		return fmt.Errorf("%s: %w", where, connectors.ErrNotFound)
	case method == "sync-collection" && r.Status != http.StatusNotFound && bytes.Contains(r.Body, []byte("sync-token")),
		method == "sync-collection" && r.Status != http.StatusNotFound && bytes.Contains(r.Body, []byte("supported-report")),
		method == "sync-collection" && (r.Status == http.StatusNotImplemented || r.Status == http.StatusMethodNotAllowed || r.Status == http.StatusBadRequest):
		return fmt.Errorf("%s: %w", where, errSyncToken)
	case r.Status == http.StatusForbidden && (verb == "PUT" || verb == "DELETE"):
		return fmt.Errorf("%s: %w: %s", where, connectors.ErrRejected, c.snippet(r.Body))
	case r.Status == http.StatusForbidden:
		return fmt.Errorf("%s: %w: no permission for this address book", where, connectors.ErrAuth)
	case r.Status >= 400 && r.Status < 500 && (verb == "PUT" || verb == "DELETE"), r.Status == http.StatusInsufficientStorage:
		return fmt.Errorf("%s: %w: %s", where, connectors.ErrRejected, c.snippet(r.Body))
	case r.Status >= 300 && r.Status < 400:
		return fmt.Errorf("%s: unexpected redirect to %s", where, c.http.Redactor.String(r.Header.Get("Location")))
	}
	return fmt.Errorf("%s: %w: %s", where, connectors.ErrMalformed, c.snippet(r.Body))
}

func (c *Connector) snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return c.http.Redactor.String(s)
}

var xmlHeader = http.Header{"Content-Type": {"application/xml; charset=utf-8"}}

func depthHeader(depth string) http.Header {
	return http.Header{"Content-Type": {"application/xml; charset=utf-8"}, "Depth": {depth}}
}

// propfind sends a PROPFIND with the given prop elements.
func (c *Connector) propfind(ctx context.Context, method string, u *url.URL, depth string, props string) (*multistatus, error) {
	body := `<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop>` + props + `</d:prop></d:propfind>`
	r, err := c.do(ctx, method, connectors.Read, "PROPFIND", u, depthHeader(depth), []byte(body), http.StatusMultiStatus)
	if err != nil {
		return nil, err
	}
	ms, err := decodeMultistatus(r.Body)
	if err != nil {
		return nil, fmt.Errorf("carddav: %s: %w", method, err)
	}
	return ms, nil
}

// syncCollection sends an RFC 6578 sync-collection report from token ("":
// initial) and returns the changed members, the deleted names and the new
// token.
func (c *Connector) syncCollection(ctx context.Context, book *url.URL, token string) ([]member, []string, string, error) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>`)
	xml.EscapeText(&b, []byte(token))
	b.WriteString(`</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/><d:getlastmodified/></d:prop></d:sync-collection>`)
	r, err := c.do(ctx, "sync-collection", connectors.Read, "REPORT", book, depthHeader("0"), []byte(b.String()), http.StatusMultiStatus)
	if err != nil {
		return nil, nil, "", err
	}
	ms, err := decodeMultistatus(r.Body)
	if err != nil {
		return nil, nil, "", fmt.Errorf("carddav: sync-collection: %w", err)
	}
	if ms.SyncToken == "" {
		return nil, nil, "", fmt.Errorf("carddav: sync-collection: %w: no sync-token in the reply", connectors.ErrMalformed)
	}
	var changed []member
	var deleted []string
	for _, resp := range ms.Responses {
		name, err := memberName(book.Path, resp.Hrefs[0])
		if err != nil {
			return nil, nil, "", fmt.Errorf("carddav: sync-collection: %w", err)
		}
		if name == "" {
			continue
		}
		if code := statusCode(resp.Status); code == http.StatusNotFound || code == http.StatusGone {
			deleted = append(deleted, name)
			continue
		}
		p := resp.okProp()
		changed = append(changed, member{name: name, href: resp.Hrefs[0], etag: p.ETag, modified: parseHTTPTime(p.LastModified)})
	}
	return changed, deleted, ms.SyncToken, nil
}

// listMembers lists the collection's address objects with their ETags
// (PROPFIND depth 1).
func (c *Connector) listMembers(ctx context.Context, method string, book *url.URL) ([]member, error) {
	ms, err := c.propfind(ctx, method, book, "1", `<d:resourcetype/><d:getetag/><d:getlastmodified/>`)
	if err != nil {
		return nil, err
	}
	var out []member
	for _, resp := range ms.Responses {
		name, err := memberName(book.Path, resp.Hrefs[0])
		if err != nil {
			return nil, fmt.Errorf("carddav: %s: %w", method, err)
		}
		p := resp.okProp()
		if name == "" || (p.ResourceType != nil && p.ResourceType.Collection != nil) {
			continue
		}
		if code := statusCode(resp.Status); code != 0 && code != http.StatusOK {
			continue
		}
		out = append(out, member{name: name, href: resp.Hrefs[0], etag: p.ETag, modified: parseHTTPTime(p.LastModified)})
	}
	return out, nil
}

// fetched is one address object read by multiget or GET.
type fetched struct {
	name     string
	etag     string
	modified time.Time
	data     []byte
}

// multiget reads the given members with one addressbook-multiget report.
// Members gone in the meantime are left out.
func (c *Connector) multiget(ctx context.Context, book *url.URL, members []member) ([]fetched, error) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><card:addressbook-multiget xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><d:getlastmodified/><card:address-data/></d:prop>`)
	for _, m := range members {
		b.WriteString("<d:href>")
		xml.EscapeText(&b, []byte(m.href))
		b.WriteString("</d:href>")
	}
	b.WriteString(`</card:addressbook-multiget>`)
	r, err := c.do(ctx, "addressbook-multiget", connectors.Read, "REPORT", book, depthHeader("1"), []byte(b.String()), http.StatusMultiStatus)
	if err != nil {
		return nil, err
	}
	ms, err := decodeMultistatus(r.Body)
	if err != nil {
		return nil, fmt.Errorf("carddav: addressbook-multiget: %w", err)
	}
	out := make([]fetched, 0, len(members))
	for _, resp := range ms.Responses {
		name, err := memberName(book.Path, resp.Hrefs[0])
		if err != nil {
			return nil, fmt.Errorf("carddav: addressbook-multiget: %w", err)
		}
		p := resp.okProp()
		if name == "" || p.AddressData == nil {
			continue
		}
		out = append(out, fetched{name: name, etag: p.ETag, modified: parseHTTPTime(p.LastModified), data: []byte(*p.AddressData)})
	}
	return out, nil
}

// memberURL is the URL of a member of the address book.
func memberURL(book *url.URL, name string) *url.URL {
	u := *book
	u.Path = path.Join(book.Path, name)
	u.RawPath = ""
	return &u
}
