package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMigrationDropsResultsJob builds a database as llmbatch left it before
// 0008 and opens it: every row is still there, results_job is gone and
// every other index stays, and the usage by model, which read the results
// through results_job, sums the same.
func TestMigrationDropsResultsJob(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := mustOpenMigrated(t, path, "0007_provider_batches.sql")
	fillOldDatabase(t, old)
	before, beforeIndexes := dumpTables(t, old.w), indexes(t, old.w)
	a, err := old.Job(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	oldStats, err := old.Stats(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, _ := mustOpenStoreAt(t, path)
	if got := dumpTables(t, s.w); !equalDumps(t, got, before) {
		t.Error("the migration changed the data")
	}
	checkSound(t, s)
	wantIndexes := slices.DeleteFunc(slices.Clone(beforeIndexes), func(ix string) bool {
		return strings.HasPrefix(ix, "results_job ON ")
	})
	if len(wantIndexes) != len(beforeIndexes)-1 {
		t.Fatalf("the database before 0008 has no results_job: %q", beforeIndexes)
	}
	if got := indexes(t, s.w); !slices.Equal(got, wantIndexes) {
		t.Errorf("indexes after the migration:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantIndexes, "\n"))
	}
	st, err := s.Stats(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Models) == 0 || !slices.Equal(st.Models, oldStats.Models) {
		t.Errorf("usage by model after the migration = %+v, want %+v", st.Models, oldStats.Models)
	}
}

// TestUsageQueriesReadResultsInOrder: the usage by model reads a job's
// results by their range of request ids, in storage order, and finds the
// range's bounds in results_job_latency; it never walks the results in
// latency order through that index nor scans the whole table.
func TestUsageQueriesReadResultsInOrder(t *testing.T) {
	s := mustOpenStore(t)
	for name, query := range map[string]string{"online": onlineUsageQuery, "batch": batchUsageQuery} {
		plan := queryPlan(t, s, query, 1)
		want := []string{"SEARCH x USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
			"SEARCH results USING COVERING INDEX results_job_latency (job_id=?)",
			"SEARCH q USING INTEGER PRIMARY KEY (rowid=?)"}
		for _, w := range want {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: plan\n%s\nwant %q", name, plan, w)
			}
		}
		if strings.Contains(plan, "SCAN") || strings.Contains(plan, "(job_id=? AND cached=?)") {
			t.Errorf("%s: plan\n%s\nwant no scan and no walk of the latency index", name, plan)
		}
	}
}
