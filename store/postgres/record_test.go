package postgres

import (
	"context"
	"testing"
)

// TestRecordNothing: an empty group commit is no error.
func TestRecordNothing(t *testing.T) {
	s := mustOpen(t)
	if err := s.Record(context.Background(), nil); err != nil {
		t.Errorf("Record(nil) = %v, want nil", err)
	}
}
