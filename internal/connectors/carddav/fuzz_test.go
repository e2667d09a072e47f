package carddav

import (
	"errors"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// Replies from any server: no panic, every unreadable reply ErrMalformed.
func FuzzDecodeMultistatus(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/u/b/a.vcf</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:sync-token>http://x/sync/1</d:sync-token></d:multistatus>`))
	f.Add([]byte(`<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><response><href>/u/b/%20x.vcf</href><propstat><prop><C:address-data>BEGIN:VCARD&#13;
END:VCARD</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`))
	f.Add([]byte(`<d:multistatus xmlns:d="DAV:"><d:response><d:status>HTTP/1.1 404 Not Found</d:status></d:response></d:multistatus>`))
	f.Add([]byte(`{"not":"xml"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := decodeMultistatus(body)
		if err != nil {
			if !errors.Is(err, connectors.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		for _, r := range ms.Responses {
			_ = r.okProp()
			_, _ = memberName("/u/b/", r.Hrefs[0])
			_ = statusCode(r.Status)
		}
	})
}
