// Package benchmarks measures the residency Router against the floor (a
// plain map under a sync.RWMutex) and against what a user would write
// instead (go-memdb used the obvious way). It holds only benchmarks; see
// README.md for how to run them and the latest figures.
package benchmarks
