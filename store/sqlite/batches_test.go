package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// TestMigrationProviderBatchesKeepsData builds a database as llmbatch left
// it before provider batches (migrations up to 0006) and opens it: every
// row of every table is still there, with provider_batch NULL (none, or
// online) in requests, attempts and results; the indexes are those it had
// and the two of 0007; and a batch can be made of its pending requests.
func TestMigrationProviderBatchesKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old := mustOpenMigrated(t, path, embeddings)
	fillOldDatabase(t, old)
	before, beforeIndexes := dumpTables(t, old.w), indexes(t, old.w)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := mustOpenMigrated(t, path, "0007_provider_batches.sql")
	want := map[string][]string{}
	for table, rows := range before {
		for _, r := range rows {
			if table == "requests" || table == "attempts" || table == "results" {
				r += "provider_batch=<nil> "
			}
			want[table] = append(want[table], r)
		}
	}
	if got := dumpTables(t, s.w); !equalDumps(t, got, want) {
		t.Error("the migration changed the data")
	}
	checkSound(t, s)
	wantIndexes := append(slices.Clone(beforeIndexes),
		"provider_batches_job ON provider_batches: CREATE INDEX provider_batches_job ON provider_batches (job_id, state)",
		"requests_provider_batch ON requests: CREATE INDEX requests_provider_batch ON requests (provider_batch, status) "+
			"WHERE provider_batch IS NOT NULL",
		"sqlite_autoindex_provider_batches_1 ON provider_batches: ")
	slices.Sort(wantIndexes)
	if got := indexes(t, s.w); !slices.Equal(got, wantIndexes) {
		t.Errorf("indexes after the migration:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantIndexes, "\n"))
	}
	job, err := s.Job(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBatch(context.Background(), jobs.ProviderBatch{JobID: job.ID, Key: "k", Model: "m"}, []int64{4, 5})
	if err != nil || b.ID == 0 {
		t.Errorf("CreateBatch of the old job's pending requests = %+v, %v", b, err)
	}
}

// TestCreateBatchOf50000 moves 50,000 requests, the most a provider takes
// in one file, into a batch in one call; with one of them no longer
// pending, the last, none moves and no batch is stored.
func TestCreateBatchOf50000(t *testing.T) {
	const n = 50_000
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "big", benchRequests(n+1))
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	mustExec(t, s, `UPDATE requests SET status = 'cancelled' WHERE id = ?`, n)
	_, err := s.CreateBatch(ctx, jobs.ProviderBatch{JobID: job.ID, Key: "first"}, ids)
	if !errors.Is(err, jobs.ErrBatchChanged) {
		t.Fatalf("CreateBatch with request %d cancelled = %v, want ErrBatchChanged", n, err)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE provider_batch IS NOT NULL OR status = 'running'`); got != 0 {
		t.Errorf("%d requests moved by a refused CreateBatch, want 0", got)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM provider_batches`); got != 0 {
		t.Errorf("%d batches stored by a refused CreateBatch, want 0", got)
	}
	mustExec(t, s, `UPDATE requests SET status = 'pending' WHERE id = ?`, n)
	b, err := s.CreateBatch(ctx, jobs.ProviderBatch{JobID: job.ID, Key: "second", Requests: n}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE provider_batch = ? AND status = 'running'`, b.ID); got != n {
		t.Errorf("%d requests running in the batch, want %d", got, n)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE status = 'pending'`); got != 1 {
		t.Errorf("%d requests pending, want 1 (the one not named)", got)
	}
}

// TestCreateBatchRefusesItsCallersMistakes: no ids, or an id named twice,
// is an error of its own, not ErrBatchChanged, and stores nothing.
func TestCreateBatchRefusesItsCallersMistakes(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "j", benchRequests(3))
	for _, ids := range [][]int64{nil, {1, 2, 1}} {
		_, err := s.CreateBatch(context.Background(), jobs.ProviderBatch{JobID: job.ID, Key: fmt.Sprint(ids)}, ids)
		if err == nil || errors.Is(err, jobs.ErrBatchChanged) {
			t.Errorf("CreateBatch(%v) = %v, want an error that is not ErrBatchChanged", ids, err)
		}
	}
	if got := queryInt(t, s, `SELECT count(*) FROM provider_batches`); got != 0 {
		t.Errorf("%d batches stored, want 0", got)
	}
}

// TestBatchQueriesUseTheirIndexes: what a run reads of a batch, and of a
// job's pending requests to make batches of, is walked in id order
// through an index, not sorted (a sort of the pending requests would hold
// their bodies); the count of requests in open batches reads only the
// index; and the updates of a batch's requests find them by id or by
// batch, never by walking the job's.
func TestBatchQueriesUseTheirIndexes(t *testing.T) {
	s := mustOpenStore(t)
	for _, tt := range []struct {
		name, query string
		args        int
		want        string
	}{
		{"PendingRequests", fmt.Sprintf(pendingQuery, "id, body"), 1,
			"SEARCH requests USING INTEGER PRIMARY KEY (rowid=?)"},
		{"BatchRequests", fmt.Sprintf(batchRequestsQuery, "id, body"), 2,
			"SEARCH requests USING INDEX requests_provider_batch (provider_batch=? AND status=?)"},
		{"InBatches", inBatchesQuery, 1,
			"SEARCH q USING COVERING INDEX requests_provider_batch (provider_batch=? AND status=?)"},
		{"CreateBatch", markInBatch.sql(maxRowsPerInsert), 2 + maxRowsPerInsert,
			"SEARCH requests USING INTEGER PRIMARY KEY (rowid=?)"},
		{"CollectBatch", collectUpdate, 1,
			"SEARCH requests USING INDEX requests_provider_batch (provider_batch=? AND status=?)"},
		{"RecordBatchOutcome", batchOutcomeUpdate, 11,
			"SEARCH requests USING INTEGER PRIMARY KEY (rowid=?)"},
	} {
		plan := queryPlan(t, s, tt.query, make([]any, tt.args)...)
		if !strings.Contains(plan, tt.want) || strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN requests") {
			t.Errorf("%s: plan\n%s\nwant %q and no sort or scan of requests", tt.name, plan, tt.want)
		}
	}
}

// queryPlan is EXPLAIN QUERY PLAN of query, a step a line.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.w.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "\n")
}
