package engine

import (
	"hash/maphash"

	"github.com/syncd/syncd/internal/state"
)

// keyFilter is a Bloom filter of the identity keys a run stored, for a
// run that began with no key in the store (a first sync): a key it has
// never been given is held by no contact, and its lookup is spared.
// It may answer yes for a key it was not given (a few in a hundred, then
// the store is asked), never no for one it was. It grows as keys come (a
// filter twice the size when the last one is full): 1.25 to 2.5 bytes
// per key. Only the writer uses it.
type keyFilter struct {
	seed  maphash.Seed
	parts []*bloom
}

// bloom is one fixed-size filter of keyFilter.
type bloom struct {
	bits  []uint64
	n     int // keys added
	limit int // keys it takes before the next filter starts
}

const (
	// bloomHashes is how many bits a key sets.
	bloomHashes = 7
	// bloomBitsPerKey gives a false positive rate near 1 %.
	bloomBitsPerKey = 10
	// bloomFirst is how many keys the first filter takes.
	bloomFirst = 8192
)

func newKeyFilter() *keyFilter { return &keyFilter{seed: maphash.MakeSeed()} }

func newBloom(keys int) *bloom {
	return &bloom{bits: make([]uint64, (keys*bloomBitsPerKey+63)/64), limit: keys}
}

func (f *keyFilter) hash(k state.IdentityKey) (uint64, uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(k.Kind)
	h.WriteByte(0)
	h.WriteString(k.Value)
	a := h.Sum64()
	// Double hashing: bit i is a + i*b.
	return a, a>>32 | a<<32 | 1
}

// add notes that a key is stored.
func (f *keyFilter) add(k state.IdentityKey) {
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].limit {
		size := bloomFirst
		if len(f.parts) > 0 {
			size = 2 * f.parts[len(f.parts)-1].limit
		}
		f.parts = append(f.parts, newBloom(size))
	}
	b := f.parts[len(f.parts)-1]
	a, step := f.hash(k)
	m := uint64(len(b.bits) * 64)
	for i := range uint64(bloomHashes) {
		bit := (a + i*step) % m
		b.bits[bit/64] |= 1 << (bit % 64)
	}
	b.n++
}

// mayHold says whether a key may be stored: false only for a key never
// added.
func (f *keyFilter) mayHold(k state.IdentityKey) bool {
	a, step := f.hash(k)
	for _, b := range f.parts {
		m := uint64(len(b.bits) * 64)
		all := true
		for i := range uint64(bloomHashes) {
			bit := (a + i*step) % m
			if b.bits[bit/64]&(1<<(bit%64)) == 0 {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
