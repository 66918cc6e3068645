// Package walvfs is an SQLite VFS that writes the WAL frames of one
// commit with one write call instead of two per page.
//
// SQLite appends a WAL frame as two writes, its 24-byte header and then
// the page. A commit that dirties 100 pages makes 200 pwrite calls, and on
// a virtual machine each costs microseconds of CPU: measured on the
// server, they were the largest single cost of recording a subscription's
// event and about a tenth of a create's CPU (cmd/fhirsub-load/PROFILE.md,
// "A commit's WAL frames in one write call").
//
// The VFS is the platform's default one (unix) with the WAL file's writes
// wrapped; every other file is the default VFS's own, untouched. Frames
// appended at the end of the log are kept in a buffer and written
// together when the page of a commit frame (a header whose "database size
// after commit" field is not zero) arrives, so a commit's frames reach
// the file before SQLite publishes the commit to readers (the wal-index
// header it writes after the frames). Every other write (the log header,
// a frame rewritten in place, checksums rewritten after it) first writes
// the buffer out and then goes straight through, and so does the buffer
// before any read, sync, truncate, size query or file-control call on the
// log. Nothing is held past the call that appends a commit frame, so
// what a crash can lose is what it could lose without the VFS.
//
// Register it once with [Register] and open a connection with the DSN
// query parameter vfs=[Name].
package walvfs

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the name the VFS is registered under.
const Name = "fhirsub-walvfs"

const (
	// frameHeader is the size of a WAL frame header (SQLite's
	// WAL_FRAME_HDRSIZE).
	frameHeader = 24
	// maxBuffer bounds what one write call carries: the unix VFS
	// writes at most 0x1ffff bytes a call (seekAndWriteFd masks the
	// length with it, so a longer write fails as "disk full"). A run of
	// frames longer than that is written in pieces (31 frames of 4 KiB
	// pages a piece).
	maxBuffer = 0x1ffff
	// maxPage is SQLite's largest page size.
	maxPage = 65536
)

var (
	once   sync.Once
	regErr error
	// The VFS and the WAL file's method table live in Go globals, which
	// never move; SQLite keeps pointers to them.
	vfs     sqlite3.Tsqlite3_vfs
	methods sqlite3.Tsqlite3_io_methods
	base    uintptr // the default VFS

	writes, calls atomic.Int64 // see Stats
)

// Register registers the VFS with SQLite (once per process) and returns
// its name.
func Register() (string, error) {
	once.Do(func() { regErr = register() })
	return Name, regErr
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	base = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if base == 0 {
		return errors.New("walvfs: SQLite has no default VFS")
	}
	b := at[sqlite3.Tsqlite3_vfs](base)
	vfs = *b
	vfs.FpNext = 0
	vfs.FszOsFile = b.FszOsFile + int32(fileHeader)
	name, err := libc.CString(Name)
	if err != nil {
		return fmt.Errorf("walvfs: %w", err)
	}
	vfs.FzName = name
	vfs.FxOpen = fnPtr(xOpen)
	vfs.FxDelete = fnPtr(xDelete)
	vfs.FxAccess = fnPtr(xAccess)
	vfs.FxFullPathname = fnPtr(xFullPathname)
	methods = sqlite3.Tsqlite3_io_methods{
		FiVersion:               3,
		FxClose:                 fnPtr(xClose),
		FxRead:                  fnPtr(xRead),
		FxWrite:                 fnPtr(xWrite),
		FxTruncate:              fnPtr(xTruncate),
		FxSync:                  fnPtr(xSync),
		FxFileSize:              fnPtr(xFileSize),
		FxLock:                  fnPtr(xLock),
		FxUnlock:                fnPtr(xUnlock),
		FxCheckReservedLock:     fnPtr(xCheckReservedLock),
		FxFileControl:           fnPtr(xFileControl),
		FxSectorSize:            fnPtr(xSectorSize),
		FxDeviceCharacteristics: fnPtr(xDeviceCharacteristics),
		FxShmMap:                fnPtr(xShmMap),
		FxShmLock:               fnPtr(xShmLock),
		FxShmBarrier:            fnPtr(xShmBarrier),
		FxShmUnmap:              fnPtr(xShmUnmap),
		FxFetch:                 fnPtr(xFetch),
		FxUnfetch:               fnPtr(xUnfetch),
	}
	if rc := sqlite3.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&vfs)), 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("walvfs: register: SQLite error %d", rc)
	}
	return nil
}

// Stats returns how many writes SQLite made to WAL files through the VFS
// and how many write calls reached the default VFS for them.
func Stats() (walWrites, walCalls int64) { return writes.Load(), calls.Load() }
