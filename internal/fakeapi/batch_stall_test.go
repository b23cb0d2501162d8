package fakeapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stallAt returns a BatchStall that blocks at step, telling reached the id
// it blocks on, until the test ends.
func stallAt(t *testing.T, step string) (func(string, string), <-chan string) {
	reached, release := make(chan string, 1), make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server's Close, registered earlier
	return func(st, id string) {
		if st == step {
			reached <- id
			<-release
		}
	}, reached
}

// TestBatchStall checks that at each step the effect has happened while
// the answer is held back, so a client stopped then never sees it.
func TestBatchStall(t *testing.T) {
	input := inLine("a", chatURL, chatBody("m", "x")) + "\n" + inLine("b", chatURL, chatBody("m", "y"))
	tests := []struct {
		step string
		// prepare makes what the stalled call needs (in the test's
		// goroutine); send is the call.
		prepare func(t *testing.T, s *Server) string
		send    func(ctx context.Context, t *testing.T, s *Server, prep string) error
		// effect checks, while the call is stalled, that its effect is there.
		effect func(t *testing.T, s *Server, id string)
	}{
		{"upload", func(*testing.T, *Server) string { return "" }, func(ctx context.Context, t *testing.T, s *Server, _ string) error {
			body, ct := multipartUpload(t, "batch", "in.jsonl", input)
			_, err := apiCall(ctx, t, s, http.MethodPost, "/files", ct, batchKey, body)
			return err
		}, func(t *testing.T, s *Server, id string) {
			var f testFile
			mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/files/"+id, "", 200), &f)
			if f.Bytes != len(input) || s.Stats().FilesUploaded != 1 {
				t.Errorf("stored %+v, uploads %d", f, s.Stats().FilesUploaded)
			}
		}},
		{"create", func(t *testing.T, s *Server) string { return uploadInput(t, s, input).ID }, func(ctx context.Context, t *testing.T, s *Server, fileID string) error {
			_, err := apiCall(ctx, t, s, http.MethodPost, "/batches", "application/json", batchKey,
				strings.NewReader(`{"input_file_id":"`+fileID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
			return err
		}, func(t *testing.T, s *Server, id string) {
			if b := waitBatch(t, s, id); b.Status != "completed" || s.Stats().BatchesCreated != 1 {
				t.Errorf("batch %+v", b)
			}
		}},
		{"download", func(t *testing.T, s *Server) string { return *runBatch(t, s, chatURL, input).OutputFileID }, func(ctx context.Context, t *testing.T, s *Server, fileID string) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/files/"+fileID+"/content", nil)
			req.Header.Set("Authorization", "Bearer "+batchKey)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if want := int(res.ContentLength) / 2; len(got) != want {
				t.Errorf("read %d bytes before the stall ended, want the first half, %d", len(got), want)
			}
			return err
		}, func(t *testing.T, s *Server, id string) {
			if id != "file-2" {
				t.Errorf("download stalled on %q, want the output file-2", id)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			s := Start(t, Config{Key: batchKey, BatchDelay: -1})
			prep := tt.prepare(t, s)
			stall, reached := stallAt(t, tt.step)
			s.SetConfig(Config{Key: batchKey, BatchDelay: -1, BatchStall: stall})

			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- tt.send(ctx, t, s, prep) }()
			var id string
			select {
			case id = <-reached:
			case err := <-errc:
				t.Fatalf("the call ended without stalling: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no stall")
			}
			tt.effect(t, s, id)
			cancel() // the client dies before the answer
			if err := <-errc; err == nil {
				t.Error("the client saw the answer through the stall")
			}
		})
	}
}
