//go:build race

package input

// raceEnabled: the race detector slows the reader about tenfold, so the
// long tests read fewer lines.
const raceEnabled = true
