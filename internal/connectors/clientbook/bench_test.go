package clientbook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/clientbook"
	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
)

// benchClient is a fully populated client as the emulator renders it.
func benchClient(i int) map[string]string {
	f := map[string]string{}
	for _, k := range clientbooktest.Fields {
		f[k] = fmt.Sprintf("%s value %d", k, i)
	}
	f["client_id"] = fmt.Sprint(i)
	f["update_date"] = "2026-03-14 09:26:53"
	f["client_gender"] = "female"
	return f
}

func BenchmarkDecodePage(b *testing.B) {
	data := make([]map[string]string, clientbook.DefaultPageSize)
	for i := range data {
		data[i] = benchClient(i + 1)
	}
	body, _ := json.Marshal(map[string]any{"data": data, "total": 100000})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := clientbook.DecodeListForBench(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(data))/b.Elapsed().Seconds(), "contacts/s")
}

func BenchmarkFullPull100k(b *testing.B) {
	const n = 100000
	for _, pageSize := range []int{clientbook.DefaultPageSize, 1000} {
		b.Run(fmt.Sprintf("page=%d", pageSize), func(b *testing.B) {
			e := newEnv(b, setup{pageSize: pageSize})
			for i := range n {
				f := benchClient(i)
				delete(f, "client_id")
				e.srv.Seed(f)
			}
			b.ReportAllocs()
			b.ResetTimer()
			total := 0
			for b.Loop() {
				got := 0
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					got += len(p.Records)
					return nil
				})
				if err != nil || got != n {
					b.Fatalf("pulled %d, err %v", got, err)
				}
				total += got
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "contacts/s")
		})
	}
}
