package jobs

import (
	"slices"
	"testing"
)

func TestShapeDiff(t *testing.T) {
	stored := Settings{Shape: map[string][]string{"model": {"m1"}, "stream": {"true"}, "param": {"a=1", "b=2"}}}
	tests := []struct {
		name  string
		given map[string][]string
		want  []string
	}{
		{"NothingGiven", nil, nil},
		{"Same", map[string][]string{"model": {"m1"}, "stream": {"true"}, "param": {"a=1", "b=2"}}, nil},
		{"Changed", map[string][]string{"model": {"m2"}, "stream": {"false"}},
			[]string{`--model: "m1" → "m2"`, `--stream: "true" → "false"`}},
		{"ParamsInAnotherOrder", map[string][]string{"param": {"b=2", "a=1"}}, []string{`--param: "a=1" "b=2" → "b=2" "a=1"`}},
		{"NotStoredButDefault", map[string][]string{"samples": {"1"}, "endpoint": {"chat"}}, nil},
		{"NotStoredNotDefault", map[string][]string{"samples": {"2"}, "endpoint": {"embeddings"}},
			[]string{`--samples: (not set) → "2"`, `--endpoint: (not set) → "embeddings"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stored.ShapeDiff(tt.given); !slices.Equal(got, tt.want) {
				t.Errorf("ShapeDiff(%v) = %q, want %q", tt.given, got, tt.want)
			}
		})
	}
}
