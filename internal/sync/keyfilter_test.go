package engine

import (
	"fmt"
	"testing"

	"github.com/syncd/syncd/internal/state"
)

// A key filter holds every key it was given, across its growth, and
// answers yes for few it was not.
func TestKeyFilterHasNoFalseNegatives(t *testing.T) {
	f := newKeyFilter()
	const n = 100_000
	for i := range n {
		f.add(state.IdentityKey{Kind: "email", Value: fmt.Sprintf("p%d@example.com", i)})
	}
	for i := range n {
		if k := (state.IdentityKey{Kind: "email", Value: fmt.Sprintf("p%d@example.com", i)}); !f.mayHold(k) {
			t.Fatalf("the filter lost %v", k)
		}
	}
	wrong := 0
	for i := range n {
		if f.mayHold(state.IdentityKey{Kind: "email", Value: fmt.Sprintf("q%d@example.com", i)}) {
			wrong++
		}
		if f.mayHold(state.IdentityKey{Kind: "phone", Value: fmt.Sprintf("p%d@example.com", i)}) {
			wrong++
		}
	}
	if rate := float64(wrong) / (2 * n); rate > 0.05 {
		t.Errorf("the filter holds %.1f %% of the keys it was not given", 100*rate)
	}
	t.Logf("%d filters, %.2f %% false positives", len(f.parts), 100*float64(wrong)/(2*n))
}
