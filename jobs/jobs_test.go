package jobs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestTransitions(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusPending, StatusRunning}: true, {StatusPending, StatusCancelled}: true,
		{StatusRunning, StatusSucceeded}: true, {StatusRunning, StatusFailed}: true,
		{StatusRunning, StatusPending}: true, {StatusRunning, StatusCancelled}: true,
		{StatusFailed, StatusPending}: true,
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				want := allowed[[2]Status{from, to}]
				if got := CanTransition(from, to); got != want {
					t.Errorf("CanTransition = %v, want %v", got, want)
				}
				if err := CheckTransition(from, to); (err == nil) != want || (err != nil && !errors.Is(err, ErrBadTransition)) {
					t.Errorf("CheckTransition = %v", err)
				}
			})
		}
	}
	if Status("bogus").Valid() || !StatusCancelled.Valid() {
		t.Error("Valid is wrong")
	}
}

func TestClassDisposition(t *testing.T) {
	for code, want := range map[int]Disposition{400: Permanent, 404: Permanent, 422: Permanent, 401: Fatal,
		402: Fatal, 403: Fatal, 408: Retryable, 409: Retryable, 429: Retryable, 500: Retryable, 503: Retryable} {
		if got := ClassForStatus(code).Disposition(); got != want {
			t.Errorf("HTTP %d: disposition %v, want %v", code, got, want)
		}
	}
}

func TestBodySplicing(t *testing.T) {
	body := []byte(` { "custom_id" : "a\"b", "model":"m","x":[1,{"y":"}"}], "t": 1e-5 ,"metadata":null} `)
	ms, err := Members(body)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key)
	}
	if got := strings.Join(keys, ","); got != "custom_id,model,x,t,metadata" {
		t.Errorf("keys = %s", got)
	}
	got, err := WithoutMembers(body, "custom_id", "metadata")
	if err != nil || string(got) != `{"model":"m","x":[1,{"y":"}"}],"t": 1e-5}` {
		t.Errorf("WithoutMembers = %s, %v", got, err)
	}
	got, err = WithMember([]byte(`{}`), "model", []byte(`"m"`))
	if err != nil || string(got) != `{"model":"m"}` {
		t.Errorf("WithMember on {} = %s, %v", got, err)
	}
	got, err = WithMember([]byte(`{"a":1}`), "model", []byte(`"m"`))
	if err != nil || string(got) != `{"model":"m","a":1}` {
		t.Errorf("WithMember = %s, %v", got, err)
	}
	if v, ok := Lookup(body, "t"); !ok || string(v) != "1e-5" {
		t.Errorf("Lookup t = %s, %v", v, ok)
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":1`, `{"a":1,}`} {
		if _, err := Members([]byte(bad)); err == nil {
			t.Errorf("Members(%q) accepted invalid input", bad)
		}
	}
}

func TestValidationErrorCapsList(t *testing.T) {
	var v ValidationError
	for i := 1; i <= MaxReported+3; i++ {
		v.Add(LineError{File: "p.jsonl", Line: i, Reason: "bad"})
	}
	lines := strings.Split(v.Error(), "\n")
	if len(lines) != MaxReported+1 || lines[0] != "p.jsonl:1: bad" || lines[MaxReported] != "… and 3 more invalid lines" {
		t.Errorf("got %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if got := (LineError{File: "p.jsonl", Reason: "empty"}).Error(); got != "p.jsonl: empty" {
		t.Errorf("file-level error = %q", got)
	}
}

func TestUsageTotalled(t *testing.T) {
	tests := []struct{ in, want Usage }{
		{Usage{Known: true, PromptTokens: 5, CompletionTokens: 2}, Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
		{Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 9}, Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 9}},
		{Usage{}, Usage{}},
	}
	for _, tt := range tests {
		if got := tt.in.Totalled(); got != tt.want {
			t.Errorf("%+v.Totalled() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
