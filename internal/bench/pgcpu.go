package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serverCPU follows the CPU time a PostgreSQL server spends for one
// database: that of the backends whose command line names the database
// (PostgreSQL sets it to "postgres: USER DATABASE HOST(PORT) STATE"), and
// what the server's own processes (checkpointer, WAL writer, ...) use
// meanwhile, which the database's writes cause, though whatever else uses
// the server then adds to it. The CPU of SQLite is the runner's own; this
// is PostgreSQL's beside it.
//
// It reads /proc every hwmEvery: a backend's CPU after the last read
// before it exits is missed.
type serverCPU struct {
	db string

	mu sync.Mutex
	// last is the CPU time of each process counted, as last read.
	last map[int]time.Duration
	// base is the CPU time of the server's own processes at the start.
	base map[int]time.Duration
	// skip are the processes that are neither (set once their command
	// line is PostgreSQL's).
	skip map[int]bool

	stop, ended chan struct{}
}

// serverProcesses are the server's own processes, by their command line.
var serverProcesses = []string{"checkpointer", "background writer", "walwriter", "autovacuum launcher",
	"logical replication launcher", "archiver", "stats collector", "walsender"}

// watchServerCPU starts following the server's CPU for database db.
func watchServerCPU(db string) *serverCPU {
	s := &serverCPU{db: db, last: map[int]time.Duration{}, base: map[int]time.Duration{}, skip: map[int]bool{},
		stop: make(chan struct{}), ended: make(chan struct{})}
	s.read(true)
	go s.loop()
	return s
}

func (s *serverCPU) loop() {
	defer close(s.ended)
	t := time.NewTicker(hwmEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.read(false)
		}
	}
}

// done stops following and returns the CPU time counted.
func (s *serverCPU) done() time.Duration {
	close(s.stop)
	<-s.ended
	s.read(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum time.Duration
	for pid, cpu := range s.last {
		sum += cpu - s.base[pid]
	}
	return sum
}

// read reads the CPU of the processes of /proc; at the start, the server's
// own processes' go to base, and the database's backends count whole.
func (s *serverCPU) read(start bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || s.skip[pid] {
			continue
		}
		if _, known := s.last[pid]; known {
			if cpu, ok := procCPU(pid); ok {
				s.last[pid] = cpu
			}
			continue
		}
		r := serverRole(readCmdline(pid), s.db)
		switch {
		case r == roleUnknown:
			continue // a new backend not named yet: read again next time
		case r == roleOther, r == roleServer && !start:
			s.skip[pid] = true // a process started since is another database's worker
			continue
		}
		cpu, ok := procCPU(pid)
		if !ok {
			continue
		}
		if r == roleServer {
			s.base[pid] = cpu
		}
		s.last[pid] = cpu
	}
}

type role int

const (
	roleOther   role = iota // not PostgreSQL, or a backend of another database
	roleUnknown             // the server, or a backend not named yet
	roleServer              // the server's own
	roleBackend             // a backend of the database
)

// serverRole says what the process with command line cmd is to the
// database db.
func serverRole(cmd, db string) role {
	rest, ok := strings.CutPrefix(cmd, "postgres: ")
	if !ok {
		// The server, and a backend it has just started: they run the
		// server's binary until the backend names itself.
		if first, _, _ := strings.Cut(cmd, " "); first == "postgres" || strings.HasSuffix(first, "/postgres") {
			return roleUnknown
		}
		return roleOther
	}
	switch {
	case strings.Contains(" "+rest+" ", " "+db+" "):
		return roleBackend
	}
	for _, p := range serverProcesses {
		if strings.HasPrefix(rest, p) || strings.Contains(rest, ": "+p) {
			return roleServer
		}
	}
	return roleOther
}

// readCmdline is the command line of process pid, its arguments joined
// by spaces, or "".
func readCmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// procCPU is the user and system CPU time of process pid.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStatCPU(b)
}

// ticksPerSecond is Linux's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every architecture Go runs on.
const ticksPerSecond = 100

// parseStatCPU reads utime and stime, the 14th and 15th fields of
// /proc/PID/stat, counted after the command in parentheses (which may
// hold spaces).
func parseStatCPU(b []byte) (time.Duration, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is the 3rd field (state); utime is the 14th.
	if len(fields) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(fields[11], 10, 64)
	s, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * time.Second / ticksPerSecond, true
}
