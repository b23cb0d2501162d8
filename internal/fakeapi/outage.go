package fakeapi

import (
	"net"
	"time"
)

// Down takes the server off the network for d: it closes its listener and
// every open connection, so that clients meet "connection refused" (not
// an HTTP error), then listens again on the same address and answers as
// before. It returns at once; Up ends the outage early. A Down during an
// outage makes the outage last d from now.
func (s *Server) Down(d time.Duration) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outTimer != nil {
		s.outTimer.Stop()
	}
	if !s.down {
		s.down = true
		s.addr = s.ts.Listener.Addr().String()
		_ = s.ts.Listener.Close()
		s.ts.CloseClientConnections()
	}
	s.outTimer = time.AfterFunc(d, s.Up)
}

// Up ends an outage Down started: the server listens again on its address.
// It does nothing when the server is up or closed.
func (s *Server) Up() {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if !s.down {
		return
	}
	select {
	case <-s.quit:
		return
	default:
	}
	ln, err := listenAgain(s.addr)
	if err != nil {
		// The port was taken meanwhile: stay down, and try again soon.
		s.outTimer = time.AfterFunc(10*time.Millisecond, s.Up)
		return
	}
	s.down = false
	s.ts.Listener = ln
	go func() { _ = s.ts.Config.Serve(ln) }()
}

// IsDown reports whether the server is in an outage.
func (s *Server) IsDown() bool {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.down
}

func listenAgain(addr string) (net.Listener, error) {
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil, err
}
