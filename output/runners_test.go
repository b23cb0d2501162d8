package output

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// fixtureRunners are two runs sharing a job, as of fixtureNow: one that
// beat 2.4s ago, one that beat a moment ago by a database clock a little
// ahead of the host's.
var (
	fixtureNow     = time.Date(2025, 1, 2, 3, 10, 0, 0, time.UTC)
	fixtureRunners = []jobs.RunnerInfo{
		{Owner: jobs.LockOwner{Token: "t1", PID: 4242, Host: "host-a"}, Running: 8,
			StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Heartbeat: fixtureNow.Add(-2400 * time.Millisecond)},
		{Owner: jobs.LockOwner{Token: "t2", PID: 77, Host: "build-server-2"}, Running: 0,
			StartedAt: time.Date(2025, 1, 2, 3, 9, 0, 0, time.UTC), Heartbeat: fixtureNow.Add(300 * time.Millisecond)},
	}
)

func TestWriteRunnersGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRunners(&buf, fixtureRunners, fixtureNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "status_runners.txt", buf.Bytes())
}

func TestWriteRunnersNone(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRunners(&buf, nil, fixtureNow); err != nil || buf.Len() != 0 {
		t.Errorf("WriteRunners(none) = %q, %v; want nothing", buf.String(), err)
	}
}

// TestStatusJSONRunners: "runners" lists the runs with host, pid, what
// each holds and its times, and is an empty array, never null, without.
func TestStatusJSONRunners(t *testing.T) {
	for _, tt := range []struct {
		name    string
		runners []jobs.RunnerInfo
		want    string
	}{
		{"None", nil, `[]`},
		{"Two", fixtureRunners, `[{"host":"host-a","pid":4242,"running":8,"started_at":"2025-01-02T03:04:05.000Z",` +
			`"last_heartbeat":"2025-01-02T03:09:57.600Z"},{"host":"build-server-2","pid":77,"running":0,` +
			`"started_at":"2025-01-02T03:09:00.000Z","last_heartbeat":"2025-01-02T03:10:00.300Z"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteStatusJSONRunners(&buf, fixtureStats(true), jobs.Prices{}, tt.runners); err != nil {
				t.Fatal(err)
			}
			var v map[string]json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := json.Compact(&got, v["runners"]); err != nil {
				t.Fatalf("runners: %v in %s", err, buf.String())
			}
			if got.String() != tt.want {
				t.Errorf("runners = %s, want %s", got.String(), tt.want)
			}
		})
	}
}
