package cli

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// A lock holder on this host is dead once its process has ended, even
// before anyone has reaped it (a run killed a moment ago is a zombie until
// then), and alive while it runs; one on another host is never judged.
func TestOwnerDead(t *testing.T) {
	host, _ := os.Hostname()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep(1): %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	owner := jobs.LockOwner{PID: cmd.Process.Pid, Host: host}
	if ownerDead(owner) {
		t.Fatalf("a running holder (pid %d) is taken for dead", owner.PID)
	}
	if ownerDead(jobs.LockOwner{PID: os.Getpid(), Host: host}) {
		t.Fatalf("this process is taken for dead")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ownerDead(owner) {
		if time.Now().After(deadline) {
			t.Fatalf("a killed, unreaped holder (pid %d) is still taken for alive", owner.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ownerDead(jobs.LockOwner{PID: owner.PID, Host: host + "-elsewhere"}) {
		t.Errorf("a holder on another host is judged by this host's processes")
	}
	_ = cmd.Wait()
	if !ownerDead(owner) {
		t.Errorf("a killed and reaped holder is taken for alive")
	}
}
