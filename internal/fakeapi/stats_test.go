package fakeapi

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestStatsConcurrent(t *testing.T) {
	const workers, perWorker = 8, 50
	s := Start(t, Config{RecordBodies: true})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				body := chatBody("m", fmt.Sprintf("prompt-%d", w*perWorker+i))
				res, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := waitIdle(t, s)
	const n = workers * perWorker
	if st.Calls != n || st.Served != n || st.Status[200] != n || len(st.ServedByKey) != n || len(st.DuplicateKeys()) != 0 {
		t.Errorf("calls %d served %d 200s %d keys %d duplicates %v", st.Calls, st.Served, st.Status[200], len(st.ServedByKey), st.DuplicateKeys())
	}
	// Each prompt "prompt-N" is 1 word: 4 prompt and 2 completion tokens.
	if want := (Usage{PromptTokens: 4 * n, CompletionTokens: 2 * n, TotalTokens: 6 * n}); st.Usage != want {
		t.Errorf("usage %+v, want %+v", st.Usage, want)
	}
	if st.MaxInFlight < 1 || st.MaxInFlight > workers {
		t.Errorf("max in flight %d", st.MaxInFlight)
	}
	if got := len(s.Bodies()); got != n {
		t.Errorf("%d bodies recorded, want %d", got, n)
	}
}

func TestStatsAndReset(t *testing.T) {
	s := Start(t, Config{Key: "k", RecordBodies: true})
	auth := "Authorization: Bearer k"
	mustPost(t, s, "/chat/completions", chatBody("m", "prompt-1"), auth)
	mustPost(t, s, "/chat/completions", chatBody("m", "prompt-1"), auth)
	mustPost(t, s, "/completions", `{"model":"m","prompt":"prompt-2"}`, auth)
	mustPost(t, s, "/chat/completions", chatBody("m", "prompt-3")) // 401
	st := waitIdle(t, s)
	if st.Calls != 4 || st.Served != 3 || st.Status[200] != 3 || st.Status[401] != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.ServedByKey["prompt-1"] != 2 || st.ServedByKey["prompt-2"] != 1 || st.ServedByKey["prompt-3"] != 0 {
		t.Errorf("served by key %v", st.ServedByKey)
	}
	if d := st.DuplicateKeys(); len(d) != 1 || d[0] != "prompt-1" {
		t.Errorf("duplicates %v", d)
	}
	bodies := s.Bodies()
	if len(bodies) != 4 || string(bodies[2]) != `{"model":"m","prompt":"prompt-2"}` {
		t.Errorf("bodies %q", bodies)
	}

	s.Reset()
	if st := s.Stats(); st.Calls != 0 || st.Served != 0 || len(st.Status) != 0 || len(st.ServedByKey) != 0 ||
		st.Usage != (Usage{}) || len(s.Bodies()) != 0 {
		t.Errorf("after Reset: %+v", st)
	}
	res := mustPost(t, s, "/chat/completions", chatBody("m", "x"), auth)
	if got := res.header.Get("X-Request-Id"); got != "req-5" {
		t.Errorf("request id after Reset %q, want req-5 (call numbers are not reset)", got)
	}
}

func TestBodiesOnlyWhenRecording(t *testing.T) {
	s := Start(t, Config{})
	mustPost(t, s, "/chat/completions", chatBody("m", "x"))
	if got := s.Bodies(); len(got) != 0 {
		t.Errorf("recorded %d bodies without RecordBodies", len(got))
	}
}
