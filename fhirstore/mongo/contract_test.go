package mongo

import (
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/storetest"
)

// runContract runs the storetest suite on b. localLocks false removes the
// in-process write locks, so that every race between this process's
// writers is decided by the database's unique _id, as between nodes.
func runContract(t *testing.T, b backend, cfg Config, localLocks bool) {
	name := b.name
	if !localLocks {
		name += ",local-locks=off"
	}
	t.Logf("storetest: backend=%s", name)
	storetest.Run(t, func(t *testing.T) fhirstore.Store {
		db := openTest(t, b, cfg)
		db.noLocalLocks = !localLocks
		return db
	}, storetest.RunOptions{Name: "backend=" + name})
}

func TestContractFerretDB(t *testing.T) {
	runContract(t, ferretBackend(), Config{}, true)
}

// TestContractFerretDBNoLocalLocks shows that the races of
// ConcurrentIfMatch and ConcurrentWriters are decided by FerretDB's unique
// _id (which it enforces), not only by this process's locks.
func TestContractFerretDBNoLocalLocks(t *testing.T) {
	runContract(t, ferretBackend(), Config{}, false)
}

func TestContractMongoDB(t *testing.T) {
	b := mongoBackend(t)
	t.Run("default", func(t *testing.T) { runContract(t, b, Config{}, true) })
	t.Run("no-local-locks", func(t *testing.T) { runContract(t, b, Config{}, false) })
}

// runEvents runs the storetest EventStore suite on b; skipRaces, when not
// empty, is why its concurrent-Record subtest cannot hold there.
func runEvents(t *testing.T, b backend, cfg Config, localLocks bool, skipRaces string) {
	name := b.name
	if !localLocks {
		name += ",local-locks=off"
	}
	t.Logf("storetest: backend=%s", name)
	storetest.RunEvents(t, func(t *testing.T) fhirstore.Store {
		db := openTest(t, b, cfg)
		db.noLocalLocks = !localLocks
		return db
	}, storetest.RunOptions{Name: "backend=" + name, SkipAtomicRaces: skipRaces})
}

func TestEventsContractFerretDB(t *testing.T) {
	runEvents(t, ferretBackend(), Config{}, true, "")
}

// ferretCountRace is why ConcurrentRecord cannot hold on FerretDB when
// nothing but the database decides (several nodes).
const ferretCountRace = "FerretDB applies $max as a non-atomic read-modify-write (it rewrites the whole " +
	"document it read; 8 writers x 50 $max ended at 395-397 instead of 399 here): two Records of one " +
	"subscription on different nodes can leave its EventCount below its last event number, which " +
	"ConcurrentRecord checks (the numbers themselves stay unique and gap-free: the events' unique _id decides them)"

// TestEventsContractFerretDBNoLocalLocks runs the suite with the
// in-process locks off, as several nodes would.
func TestEventsContractFerretDBNoLocalLocks(t *testing.T) {
	runEvents(t, ferretBackend(), Config{}, false, ferretCountRace)
}

func TestEventsContractMongoDB(t *testing.T) {
	b := mongoBackend(t)
	t.Run("default", func(t *testing.T) { runEvents(t, b, Config{}, true, "") })
	t.Run("no-local-locks", func(t *testing.T) { runEvents(t, b, Config{}, false, "") })
}
