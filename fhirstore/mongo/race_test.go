//go:build race

package mongo

// raceEnabled: the race detector would instrument an in-process FerretDB
// too, which makes it several times slower; TestMain runs it as a separate
// process instead.
const raceEnabled = true
