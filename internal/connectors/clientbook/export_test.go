package clientbook

import "time"

// DecodeListForBench exposes the page decoder to the external benchmarks.
func DecodeListForBench(body []byte) (int, error) {
	rep, err := decodeList(body, time.UTC)
	return len(rep.clients), err
}
