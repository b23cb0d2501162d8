package jobs

import (
	"testing"
	"time"
)

func TestRunStateLive(t *testing.T) {
	saved := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := RunState{UpdatedAt: saved}
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {time.Second, true}, {RunStateStaleAfter, true}, {RunStateStaleAfter + time.Millisecond, false}, {time.Hour, false}} {
		if got := s.Live(saved.Add(tt.after)); got != tt.want {
			t.Errorf("Live %v after saving = %v, want %v", tt.after, got, tt.want)
		}
	}
	if (RunState{}).Live(saved) {
		t.Error("a state never saved is live")
	}
}
