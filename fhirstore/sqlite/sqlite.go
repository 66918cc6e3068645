package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite/walvfs"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures Open. The zero value of every field but Path means its
// default.
type Config struct {
	// Path is the database file; its directory is created if missing.
	Path string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// BusyTimeout is how long a statement waits for a lock held by another
	// process (default 10 s).
	BusyTimeout time.Duration
	// PollInterval is how often Wait's poller looks for commits made by
	// other processes (default 250 ms). An Exclusive DB has no poller.
	PollInterval time.Duration
	// ReadConns is the size of the read connection pool (default
	// max(4, GOMAXPROCS)).
	ReadConns int
	// RelaxedSync runs the writer with synchronous=NORMAL instead of FULL:
	// a committed write then survives a crash of the process but may be
	// lost with the last commits on a power loss or an OS crash. The
	// default (false) fsyncs the WAL at every commit, so that a write is
	// durable when it is acknowledged; group commit (write.go) shares one
	// fsync among the writes that wait together.
	RelaxedSync bool
	// Exclusive makes this DB the file's only user: Open takes an
	// exclusive lock on Path+"-lock" and fails while another process
	// holds it, and Changes then serves the head of the feed from the
	// changes committed here (recent.go) instead of querying after every
	// commit. Without it, other processes may write the same file and
	// their commits are found by polling.
	Exclusive bool
	// Observe, when set, is told how long each piece of the writer's work
	// under the write lock took (a group commit, or the checkpoint the
	// writer finishes): the wait of every write queued behind it. It runs
	// on the writer's goroutine, so it must be quick.
	Observe func(WriterWork)
}

// WriterWork is one piece of the writer's work under the write lock, for
// Config.Observe.
type WriterWork struct {
	// Kind is WorkResources (a group commit of resource writes, its fsync
	// included), WorkEvents (one of the event store's writes, no fsync)
	// or WorkCheckpoint (the writer waiting for and finishing a
	// checkpoint, checkpoint.go).
	Kind string
	// Requests is the number of requests in the batch, each in its own
	// savepoint (0 for a checkpoint).
	Requests int
	// Took is how long it held the write lock.
	Took time.Duration
}

// The kinds of WriterWork.
const (
	WorkResources  = "commit-resources"
	WorkEvents     = "commit-events"
	WorkCheckpoint = "checkpoint"
)

// DB is a fhirstore.Store on one SQLite file. Create it with Open and
// release it with Close. Safe for concurrent use.
type DB struct {
	cfg    Config
	log    *slog.Logger
	writer *sql.DB   // one connection, pinned as wconn once migrated
	wconn  *sql.Conn // the writer's connection: every write transaction (wtx.go)
	tx     wtx       // the write transaction on wconn, guarded by wmu
	txs    txStmts   // BEGIN, COMMIT and ROLLBACK, prepared on wconn
	reader *sql.DB   // read-only pool
	ckpt   *sql.DB   // one connection for the checkpointer (checkpoint.go)

	wmu     sync.Mutex  // serialises write transactions (the group-commit leader holds it)
	relaxed bool        // the writer runs synchronous=NORMAL now (durability.go); guarded by wmu
	stmts   writeStmts  // prepared on wconn, guarded by wmu
	evStmts eventStmts  // event store statements, prepared on wconn, guarded by wmu
	counts  eventCounts // event numbers and cursors in memory (eventcounts.go), guarded by wmu
	rstmts  readStmts   // hot read statements, prepared on reader
	qmu     sync.Mutex  // guards queue; taken inside wmu, never the other way round
	queue   []*request  // writes waiting for a leader
	leading bool        // a submit call leads (commits the queue); guarded by qmu
	notify  *fhirstore.Notifier
	seen    atomic.Int64   // highest seq known to be committed
	recent  recentChanges  // the last changes committed here (recent.go); read with cfg.Exclusive
	vers    recentVersions // the last versions written here (recent.go)
	lock    *os.File       // the Exclusive lock, released by Close
	commits atomic.Uint64  // commits made, for the checkpointer
	// ckptAt is commits when the last checkpoint began; ckptEvery the
	// commits after which the next is due (checkpoint.go).
	ckptAt    atomic.Uint64
	ckptEvery atomic.Uint64
	kick      chan struct{} // wakes the checkpointer (capacity 1)
	finish    atomic.Bool   // the writer should finish the last checkpoint
	ckptMu    sync.Mutex    // guards ckptRun
	ckptRun   chan struct{} // closed when the background checkpoint running ends; nil when none runs

	ctx context.Context // cancelled by Close; the poller's queries use it
	// wctx is ctx without its cancellation, for the writer's statements.
	// The driver starts a goroutine per statement to watch a context that
	// can end (and a transaction one more); a commit is short, and Close
	// takes the write lock, so it waits for the commit in progress rather
	// than interrupting it and failing its writers.
	wctx      context.Context
	cancel    context.CancelFunc
	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ fhirstore.Store = (*DB)(nil)

// Open opens (creating if needed) the database at cfg.Path, applies the
// pending schema migrations and starts the commit poller.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("open sqlite store: path required")
	}
	if strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("open sqlite store: path %q must not contain '?' or '#'", cfg.Path)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 10 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.ReadConns <= 0 {
		cfg.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite store: %w", err)
		}
	}
	db := &DB{
		cfg:     cfg,
		relaxed: cfg.RelaxedSync, // as the writer's DSN opens it
		log:     cfg.Logger.With("store", "sqlite", "path", cfg.Path),
		notify:  fhirstore.NewNotifier(),
		quit:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
	}
	db.ckptEvery.Store(firstEvery)
	if cfg.Exclusive {
		lock, err := lockFile(cfg.Path + "-lock")
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", cfg.Path, err)
		}
		db.lock = lock
	}
	db.ctx, db.cancel = context.WithCancel(context.Background())
	db.wctx = context.WithoutCancel(db.ctx)
	if err := db.open(ctx); err != nil {
		db.cancel()
		_ = db.closeDBs()
		return nil, fmt.Errorf("open sqlite store %s: %w", cfg.Path, err)
	}
	db.wg.Add(1)
	go db.checkpoint()
	if !cfg.Exclusive {
		// An Exclusive DB makes every commit itself: nothing to poll for.
		db.wg.Add(1)
		go db.poll()
	}
	db.log.Info("sqlite store opened", "last_seq", db.seen.Load())
	return db, nil
}

func (db *DB) dsn(readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", db.cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if db.cfg.RelaxedSync || readOnly {
		q.Add("_pragma", "synchronous(NORMAL)") // readers never commit
	} else {
		q.Add("_pragma", "synchronous(FULL)") // an acknowledged write survives power loss
	}
	if readOnly {
		q.Add("_pragma", "cache_size(-16384)")   // 16 MiB page cache per reader
		q.Add("_pragma", "mmap_size(268435456)") // read pages through a 256 MiB mapping, not pread
	} else {
		// The writer keeps SQLite's default 2 MiB cache and reads with
		// pread. After a B-tree split SQLite parks a page under a number
		// past the end of the file, and the commit that follows scans
		// the whole page-cache hash to drop it: with 16 MiB that scan
		// was 4-5% of the server's CPU under writes. With the smaller
		// cache the writer reads more pages again; through the mapping
		// those reads kept every page of the file resident (RSS 9.1
		// instead of 7.2 KB per subscription at 20,000), through pread
		// they cost ~5% more CPU per create than the mapping and still
		// ~10% less than before.
		q.Add("_pragma", "cache_size(-2000)")
		q.Add("_pragma", "mmap_size(0)")
		// one write call for the WAL frames of a commit, not two a page
		// (walvfs; registered by open)
		q.Set("vfs", walvfs.Name)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "temp_store(MEMORY)")    // savepoint journals stay in memory
		q.Add("_pragma", "wal_autocheckpoint(0)") // the checkpointer goroutine does it (checkpoint.go)
		q.Set("_txlock", "immediate")
	}
	return db.cfg.Path + "?" + q.Encode()
}

func (db *DB) open(ctx context.Context) error {
	if _, err := walvfs.Register(); err != nil {
		return err
	}
	var err error
	if db.writer, err = sql.Open("sqlite", db.dsn(false)); err != nil {
		return err
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	if err := db.migrate(ctx); err != nil {
		return err
	}
	if db.wconn, err = db.writer.Conn(ctx); err != nil {
		return err
	}
	db.tx = wtx{conn: db.wconn}
	if err := db.txs.prepare(ctx, db.wconn); err != nil {
		return err
	}
	if err := db.stmts.prepare(ctx, db.wconn); err != nil {
		return err
	}
	if err := db.evStmts.prepare(ctx, db.wconn); err != nil {
		return err
	}
	if db.reader, err = sql.Open("sqlite", db.dsn(true)); err != nil {
		return err
	}
	db.reader.SetMaxOpenConns(db.cfg.ReadConns)
	db.reader.SetMaxIdleConns(db.cfg.ReadConns)
	if err := db.rstmts.prepare(ctx, db.reader); err != nil {
		return err
	}
	if db.ckpt, err = sql.Open("sqlite", db.dsn(false)); err != nil {
		return err
	}
	db.ckpt.SetMaxOpenConns(1)
	db.ckpt.SetMaxIdleConns(1)
	db.ckpt.SetConnMaxLifetime(0)
	db.ckpt.SetConnMaxIdleTime(0)
	last, err := db.storedLastSeq(ctx)
	if err != nil {
		return err
	}
	db.seen.Store(last)
	return nil
}

// migrate applies the embedded migrations numbered above PRAGMA
// user_version, each in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	var version int
	if err := db.writer.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("schema version %d is newer than this program (%d)", version, len(names))
	}
	for i := version; i < len(names); i++ {
		script, err := migrations.ReadFile(names[i])
		if err != nil {
			return fmt.Errorf("read migration %s: %w", names[i], err)
		}
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		db.log.Info("schema migrated", "migration", names[i])
	}
	return nil
}

// Ping reports whether the database file can be read.
func (db *DB) Ping(ctx context.Context) error {
	if db.closed() {
		return fhirstore.ErrClosed
	}
	if err := db.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	return nil
}

// Close stops the poller, wakes blocked Wait calls with
// fhirstore.ErrClosed, waits for the poller and closes the database.
// Calling it again returns the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.quit)
		db.cancel()
		db.wg.Wait()
		db.wmu.Lock()
		defer db.wmu.Unlock()
		db.closeErr = db.closeDBs()
		db.log.Info("sqlite store closed")
	})
	return db.closeErr
}

func (db *DB) closeDBs() error {
	var errs []error
	db.txs.close()
	db.stmts.close()
	db.evStmts.close()
	db.rstmts.close()
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.Close())
	}
	if db.wconn != nil {
		// Checkpoint so that the file is complete without its WAL.
		_, _ = db.wconn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, db.wconn.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	if db.lock != nil { // after the connections: the next opener finds the file closed
		errs = append(errs, db.lock.Close())
		db.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

func (db *DB) closed() bool {
	select {
	case <-db.quit:
		return true
	default:
		return false
	}
}
