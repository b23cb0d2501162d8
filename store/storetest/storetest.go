package storetest

import (
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// Run runs every contract test as a subtest of t, each on a fresh store
// from open. open returns an empty store and closes it when its t ends
// (t.Cleanup); the Close test closes it first, so a second Close must
// return nil.
func Run(t *testing.T, open func(t *testing.T) jobs.Store) {
	t.Helper()
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			st := open(t)
			if _, shared := st.(jobs.Runners); shared && oneRunPerJob[c.name] {
				t.Skip("a live run does not keep another off the job here: Lock admits every run (jobs.Runners)")
			}
			c.test(t, st)
		})
	}
}

// oneRunPerJob are the cases of an engine that keeps one run per job: a
// second run is refused while the first lives. An engine that implements
// jobs.Runners promises the opposite, and its own tests hold it to that.
var oneRunPerJob = map[string]bool{"LockRefusedWhileLive": true, "LockTakenOverWhenStale": true}

// contract lists the tests Run runs, by what they hold the store to.
var contract = []struct {
	name string
	test func(*testing.T, jobs.Store)
}{
	{"ImportStoresRequestsExactly", testImportStoresRequestsExactly},
	{"ImportStoresFingerprint", testImportStoresFingerprint},
	{"ImportDuplicateCustomIDStoresNothing", testImportDuplicateCustomID},
	{"ImportReadErrorStoresNothing", testImportReadError},
	{"ImportInvalidLineStoresNothing", testImportInvalidLine},
	{"ImportSameNameRefused", testImportSameName},
	{"ImportKeepsInvalidLines", testImportKeepsInvalidLines},
	{"ClaimInInputOrder", testClaimInInputOrder},
	{"ClaimOnlyDue", testClaimOnlyDue},
	{"ClaimConcurrentlyNeverTwice", testClaimConcurrently},
	{"ClaimNothingOfCancelledJob", testClaimCancelledJob},
	{"Waiting", testWaiting},
	{"RecordOutcomes", testRecordOutcomes},
	{"RecordExactlyOnce", testRecordExactlyOnce},
	{"RecordManySomeNoLongerRunning", testRecordManySomeNoLongerRunning},
	{"RecordRejectsWholeBatch", testRecordRejectsWholeBatch},
	{"RecoverKeepsAttempts", testRecover},
	{"LockRefusedWhileLive", testLockRefusedWhileLive},
	{"LockSameOwnerRelocks", testLockSameOwnerRelocks},
	{"LockTakenOverWhenStale", testLockTakenOverWhenStale},
	{"LockTakenOverFromDeadHolder", testLockTakenOverFromDeadHolder},
	{"Heartbeat", testHeartbeat},
	{"Unlock", testUnlock},
	{"JobAndJobs", testJobAndJobs},
	{"Retry", testRetry},
	{"RetryAndCancelOfCancelledJob", testRetryAndCancelOfCancelledJob},
	{"CancelWithoutRun", testCancelWithoutRun},
	{"CancelDuringRun", testCancelDuringRun},
	{"ClearWaits", testClearWaits},
	{"SettingsAndEndRun", testSettingsAndEndRun},
	{"RunState", testRunState},
	{"RecordsInInputOrder", testRecordsInInputOrder},
	{"RecordsStopsOnCallbackError", testRecordsStops},
	{"CacheAnswersIdenticalRequests", testCacheAnswers},
	{"CacheInChunksBesideClaims", testCacheChunks},
	{"CacheWithNothingToAnswer", testCacheNothingToAnswer},
	{"CacheOfCancelledJobs", testCacheCancelledJobs},
	{"Embeddings", testEmbeddings},
	{"StatsAfterKnownOutcomes", testStatsAfterKnownOutcomes},
	{"StatsOfNewJob", testStatsOfNewJob},
	{"StatsThroughput", testStatsThroughput},
	{"SummarySnapshot", testSummarySnapshot},
	{"Models", testModels},
	{"Report", testReport},
	{"BatchCreate", testBatchCreate},
	{"BatchCreateRefused", testBatchCreateRefused},
	{"BatchUpdate", testBatchUpdate},
	{"BatchStaysCollected", testBatchStaysCollected},
	{"BatchRequests", testBatchRequests},
	{"BatchPendingRequests", testPendingRequests},
	{"BatchRecord", testBatchRecord},
	{"BatchRecordExactlyOnce", testBatchRecordExactlyOnce},
	{"BatchLeftAlone", testBatchLeftAlone},
	{"BatchCollect", testBatchCollect},
	{"Close", testClose},
}
