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
	if cfg.DisableTransactions {
		name += ",transactions=off"
	}
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
	t.Run("no-transactions", func(t *testing.T) {
		runContract(t, b, Config{DisableTransactions: true}, false)
	})
}
