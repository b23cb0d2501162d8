package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// The tests of this file cover the bulk paths: multi-row import with its
// fallback for duplicates, reading ahead, the deferred index, and the claim
// committed without an fsync.

func TestImportDuplicatesInBatches(t *testing.T) {
	n := 3*importBatch + 7 // three full batches and a short one
	dupAt := func(dups map[int]int) []jobs.Request {
		reqs := chatRequests(n)
		for line, first := range dups {
			reqs[line-1].CustomID = reqs[first-1].CustomID
		}
		return reqs
	}
	tests := []struct {
		name string
		dups map[int]int // line → the earlier line whose custom_id it reuses
	}{
		{"SameBatch", map[int]int{5: 2}},
		{"EarlierBatch", map[int]int{importBatch + 3: 1}},
		{"ShortLastBatch", map[int]int{n: importBatch}},
		{"SeveralBatches", map[int]int{10: 9, importBatch + 1: importBatch, 2*importBatch + 50: 7, n - 1: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			src := &sliceSource{reqs: dupAt(tt.dups)}
			_, err := s.Import(context.Background(), jobs.Job{Name: "dups", Source: "dups.jsonl"}, src)
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Import() error = %v, want a *jobs.ValidationError", err)
			}
			var want []jobs.LineError
			for line, first := range tt.dups {
				want = append(want, jobs.LineError{File: "input.jsonl", Line: line,
					Reason: fmt.Sprintf("duplicate custom_id %q (first used on line %d)", fmt.Sprintf("req-%d", first), first)})
			}
			slices.SortFunc(want, func(a, b jobs.LineError) int { return a.Line - b.Line })
			if got := src.rejected; !slices.Equal(got, want) {
				t.Errorf("Reject calls = %+v, want %+v", got, want)
			}
			if n := queryInt(t, s, `SELECT count(*) FROM requests`); n != 0 {
				t.Errorf("requests after a failed import = %d, want 0", n)
			}
		})
	}
}

func TestImportReadErrorAfterBatches(t *testing.T) {
	ioErr := errors.New("read input.jsonl: input/output error")
	s := mustOpenStore(t)
	src := &sliceSource{reqs: chatRequests(5 * importBatch), failAt: 2*importBatch + 3, ioErr: ioErr}
	if _, err := s.Import(context.Background(), jobs.Job{Name: "io", Source: "io.jsonl"}, src); !errors.Is(err, ioErr) {
		t.Fatalf("Import() error = %v, want %v", err, ioErr)
	}
	if n := queryInt(t, s, `SELECT count(*) FROM requests`); n != 0 {
		t.Errorf("requests after a failed import = %d, want 0", n)
	}
}

func TestImportLargeRebuildsDeferredIndexes(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	s.DeferIndexesAfter = 2 * importBatch
	indexSQL := func() []string {
		var out []string
		rows, err := s.w.QueryContext(ctx, `SELECT name || ': ' || sql FROM sqlite_master
			WHERE type = 'index' AND tbl_name = 'requests' AND sql IS NOT NULL ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	before := indexSQL()
	reqs := chatRequests(5 * importBatch)
	for i := range reqs {
		reqs[i].CacheKey = fmt.Sprintf("%064x", (i*7919)%len(reqs)) // in no order
	}
	job := mustImport(t, s, "large", reqs)
	if got := indexSQL(); !slices.Equal(got, before) {
		t.Errorf("indexes after a large import:\n%q\nwant:\n%q", got, before)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests INDEXED BY requests_cache_key WHERE cache_key > ''`); got != len(reqs) {
		t.Errorf("cache-key index holds %d keys, want %d", got, len(reqs))
	}
	if res, err := s.IntegrityCheck(ctx); err != nil || res != "ok" {
		t.Errorf("integrity_check = %q, %v", res, err)
	}
	// A small job imported into the now large table keeps the index as it
	// goes and is found through it too.
	small := chatRequests(3 * importBatch)
	for i := range small {
		small[i].CustomID = fmt.Sprintf("small-%d", i)
		small[i].CacheKey = fmt.Sprintf("k%d", i)
	}
	mustImport(t, s, "small", small)
	if got := queryInt(t, s, `SELECT count(*) FROM requests INDEXED BY requests_cache_key WHERE cache_key = 'k5'`); got != 1 {
		t.Errorf("small job's key k5 found %d times, want 1", got)
	}
	if got := mustClaim(t, s, job.ID, 3); !slices.Equal(linesOf(got), []int{1, 2, 3}) {
		t.Errorf("claimed lines %v after the rebuild, want 1, 2, 3", linesOf(got))
	}
}

func TestClaimRestoresFullSync(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "sync", chatRequests(3))
	mustClaim(t, s, job.ID, 2)
	// The writer is one connection: what it reports now is what the next
	// Record commits with. 2 is FULL.
	if got := queryInt(t, s, `PRAGMA synchronous`); got != 2 {
		t.Errorf("synchronous after a claim = %d, want 2 (FULL)", got)
	}
	// A claim that fails half-way restores it too.
	boom := errors.New("boom")
	err := s.withoutSync(ctx, func(conn *sql.Conn) error {
		var level int
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil || level != 1 {
			t.Errorf("synchronous inside withoutSync = %d, %v; want 1 (NORMAL)", level, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("withoutSync() = %v, want %v", err, boom)
	}
	if got := queryInt(t, s, `PRAGMA synchronous`); got != 2 {
		t.Errorf("synchronous after a failed claim = %d, want 2 (FULL)", got)
	}
}

func TestDeferralDropsAndRebuilds(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	after := s.DeferIndexesAfter
	if after != DefaultDeferIndexesAfter {
		t.Fatalf("Open set DeferIndexesAfter = %d, want %d", after, DefaultDeferIndexesAfter)
	}
	indexes := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'requests_cache_key'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tt := range []struct {
		name     string
		existing int // rows in requests before
		stored   int // rows the import has stored
		drop     bool
	}{
		{"SmallImport", 0, after - 1, false},
		{"LargeImportEmptyTable", 0, after, true},
		{"LargeImportLargerTable", after + 1, after, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			d, err := newDeferral(ctx, tx, after)
			if err != nil {
				t.Fatal(err)
			}
			d.existing = int64(tt.existing)
			if err := d.maybeDrop(ctx, tx, tt.stored); err != nil {
				t.Fatal(err)
			}
			if got, want := indexes(tx) == 0, tt.drop; got != want {
				t.Errorf("index dropped = %v, want %v", got, want)
			}
			if err := d.rebuild(ctx, tx); err != nil {
				t.Fatal(err)
			}
			if indexes(tx) != 1 {
				t.Error("index missing after rebuild")
			}
		})
	}
}
