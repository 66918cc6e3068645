package walvfs

import (
	"cmp"
	"encoding/binary"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// walFile heads the sqlite3_file SQLite allocates for a WAL file opened
// through the VFS (vfs.szOsFile bytes, C memory); the default VFS's own
// file follows it at fileHeader. A file is used by one connection at a
// time, as SQLite guarantees, so its fields need no lock.
type walFile struct {
	methods uintptr // sqlite3_file.pMethods: &methods
	buf     uintptr // sqlite3_malloc64 memory holding frames not written yet
	size    int64   // bytes allocated at buf
	n       int64   // bytes held at buf
	off     int64   // the file offset of buf's first byte
	end     int64   // the offset past the last byte written or held
	commit  int64   // 1: the frame header held last is a commit frame's
	page    int64   // the size of the last page held (0: none yet)
}

const fileHeader = (unsafe.Sizeof(walFile{}) + 15) &^ 15

// realFile is the default VFS's file inside the WAL file p.
func realFile(p uintptr) uintptr { return p + fileHeader }

// realMethods is the method table of the default VFS's file inside p.
func realMethods(p uintptr) *sqlite3.Tsqlite3_io_methods {
	return at[sqlite3.Tsqlite3_io_methods](at[sqlite3.Tsqlite3_file](realFile(p)).FpMethods)
}

// xWrite holds a frame appended at the end of the log (its header, then
// its page) and writes every frame held when a commit frame's page
// arrives; any other write goes through after what is held.
func xWrite(tls *libc.TLS, p, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	writes.Add(1)
	f := at[walFile](p)
	n := int64(iAmt)
	appended := iAmt == frameHeader && iOfst == f.end && (f.n == 0 || f.off+f.n == iOfst)
	room := n // a frame's header needs room for its page too
	if appended {
		room += cmp.Or(f.page, maxPage)
	}
	extends := f.n > 0 && f.off+f.n == iOfst && f.n+room <= maxBuffer
	if iOfst == 0 {
		f.end = n // the log starts again with its header
	} else {
		f.end = max(f.end, iOfst+n)
	}
	if !appended && !extends {
		if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
			return rc
		}
		return writeThrough(tls, p, zBuf, iAmt, iOfst)
	}
	if !extends { // a frame's header starts what is held (appended)
		if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
			return rc
		}
		f.off = iOfst
	}
	if !hold(tls, f, zBuf, n) {
		if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
			return rc
		}
		return writeThrough(tls, p, zBuf, iAmt, iOfst)
	}
	if appended {
		// bytes 4-7 of a frame header: the database size after a commit
		// frame, 0 in any other frame
		f.commit = 0
		if binary.BigEndian.Uint32(bytesAt(zBuf+4, 4)) != 0 {
			f.commit = 1
		}
		return sqlite3.SQLITE_OK
	}
	f.page = n
	if f.commit != 0 {
		return flush(tls, p) // the commit frame is complete: before SQLite publishes it
	}
	return sqlite3.SQLITE_OK
}

// hold appends n bytes at zBuf to f's buffer, growing it; false when no
// memory is left for it.
func hold(tls *libc.TLS, f *walFile, zBuf uintptr, n int64) bool {
	if need := f.n + n; need > f.size {
		size := max(f.size*2, 64<<10)
		for size < need {
			size *= 2
		}
		buf := sqlite3.Xsqlite3_realloc64(tls, f.buf, uint64(size))
		if buf == 0 {
			return false
		}
		f.buf, f.size = buf, size
	}
	copy(bytesAt(f.buf+uintptr(f.n), n), bytesAt(zBuf, n))
	f.n += n
	return true
}

// flush writes what p holds.
func flush(tls *libc.TLS, p uintptr) int32 {
	f := at[walFile](p)
	if f.n == 0 {
		return sqlite3.SQLITE_OK
	}
	n := f.n
	f.n, f.commit = 0, 0
	return writeThrough(tls, p, f.buf, int32(n), f.off)
}

func writeThrough(tls *libc.TLS, p, buf uintptr, n int32, off int64) int32 {
	calls.Add(1)
	return fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(p).FxWrite)(tls, realFile(p), buf, n, off)
}

func xClose(tls *libc.TLS, p uintptr) int32 {
	rc := flush(tls, p)
	f := at[walFile](p)
	if f.buf != 0 {
		sqlite3.Xsqlite3_free(tls, f.buf)
		f.buf, f.size = 0, 0
	}
	if rc2 := fn[func(*libc.TLS, uintptr) int32](realMethods(p).FxClose)(tls, realFile(p)); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func xRead(tls *libc.TLS, p, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(p).FxRead)(tls, realFile(p), zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, p uintptr, size int64) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	f := at[walFile](p)
	f.end = min(f.end, size)
	return fn[func(*libc.TLS, uintptr, int64) int32](realMethods(p).FxTruncate)(tls, realFile(p), size)
}

func xSync(tls *libc.TLS, p uintptr, flags int32) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32) int32](realMethods(p).FxSync)(tls, realFile(p), flags)
}

func xFileSize(tls *libc.TLS, p, pSize uintptr) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, uintptr) int32](realMethods(p).FxFileSize)(tls, realFile(p), pSize)
}

func xFileControl(tls *libc.TLS, p uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32, uintptr) int32](realMethods(p).FxFileControl)(tls, realFile(p), op, pArg)
}

func xFetch(tls *libc.TLS, p uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	if rc := flush(tls, p); rc != sqlite3.SQLITE_OK {
		return rc
	}
	if realMethods(p).FxFetch == 0 {
		*at[uintptr](pp) = 0 // no mapping: SQLite reads instead
		return sqlite3.SQLITE_OK
	}
	return fn[func(*libc.TLS, uintptr, int64, int32, uintptr) int32](realMethods(p).FxFetch)(tls, realFile(p), iOfst, iAmt, pp)
}
