package fakeapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkChat measures the fake's throughput for plain chat answers, the
// hot path of the runner's benchmarks.
func BenchmarkChat(b *testing.B) {
	s := New(Config{Key: "k"})
	defer s.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := chatBody("deepseek/deepseek-v3", "prompt-1 with a few more words")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, s.URL()+"/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer k")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	if st := s.Stats(); st.Served < int64(b.N) {
		b.Errorf("served %d of %d", st.Served, b.N)
	}
}
