package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestRunState(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "paced", chatRequests(2))
	other := mustImport(t, s, "other", chatRequests(1))

	t.Run("NoneSaved", func(t *testing.T) {
		if _, err := s.RunState(ctx, job.ID); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("RunState = %v, want jobs.ErrNotFound", err)
		}
	})
	want := jobs.RunState{Concurrency: 8, MaxConcurrency: 64, InFlight: 7, RPM: 3000, TPM: 90000, AdaptiveRPM: 2700,
		PausedUntil: t0.Add(1500 * time.Millisecond), UpdatedAt: t0}
	t.Run("SaveAndRead", func(t *testing.T) {
		if err := s.SaveRunState(ctx, job.ID, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.RunState(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRunState(got, want) {
			t.Errorf("RunState = %+v, want %+v", got, want)
		}
		if _, err := s.RunState(ctx, other.ID); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("another job's RunState = %v, want jobs.ErrNotFound", err)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		next := jobs.RunState{Concurrency: 9, MaxConcurrency: 64, UpdatedAt: t0.Add(time.Second)}
		if err := s.SaveRunState(ctx, job.ID, next); err != nil {
			t.Fatal(err)
		}
		got, err := s.RunState(ctx, job.ID)
		if err != nil || !sameRunState(got, next) || !got.PausedUntil.IsZero() {
			t.Errorf("RunState = %+v, %v; want %+v with no pause", got, err, next)
		}
	})
	t.Run("Clear", func(t *testing.T) {
		if err := s.ClearRunState(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RunState(ctx, job.ID); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("RunState after Clear = %v, want jobs.ErrNotFound", err)
		}
		if err := s.ClearRunState(ctx, job.ID); err != nil {
			t.Errorf("a second Clear = %v, want nil", err)
		}
	})
}

func sameRunState(a, b jobs.RunState) bool {
	return a.Concurrency == b.Concurrency && a.MaxConcurrency == b.MaxConcurrency && a.InFlight == b.InFlight &&
		a.RPM == b.RPM && a.TPM == b.TPM && a.AdaptiveRPM == b.AdaptiveRPM &&
		a.PausedUntil.Equal(b.PausedUntil) && a.UpdatedAt.Equal(b.UpdatedAt)
}
