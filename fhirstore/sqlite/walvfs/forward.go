package walvfs

import (
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// baseVFS is the default VFS, to which every method forwards. The WAL
// file's method table is of version 3; the default VFS's file inside may
// have an older one, and a method it lacks answers as SQLite expects of a
// file without it.
func baseVFS() *sqlite3.Tsqlite3_vfs { return at[sqlite3.Tsqlite3_vfs](base) }

// xOpen opens every file but a WAL file with the default VFS, in place;
// a WAL file gets the default VFS's file behind a walFile.
func xOpen(tls *libc.TLS, _, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	open := fn[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32](baseVFS().FxOpen)
	if flags&sqlite3.SQLITE_OPEN_WAL == 0 {
		return open(tls, base, zName, pFile, flags, pOutFlags)
	}
	f := at[walFile](pFile)
	*f = walFile{}
	rc := open(tls, base, zName, realFile(pFile), flags, pOutFlags)
	// SQLite closes a file whose pMethods is set, even after a failed
	// open: forward that close when the default VFS asks for it
	if at[sqlite3.Tsqlite3_file](realFile(pFile)).FpMethods != 0 {
		f.methods = uintptr(unsafe.Pointer(&methods))
	}
	return rc
}

func xDelete(tls *libc.TLS, _, zName uintptr, syncDir int32) int32 {
	return fn[func(*libc.TLS, uintptr, uintptr, int32) int32](baseVFS().FxDelete)(tls, base, zName, syncDir)
}

func xAccess(tls *libc.TLS, _, zName uintptr, flags int32, pResOut uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, uintptr, int32, uintptr) int32](baseVFS().FxAccess)(tls, base, zName, flags, pResOut)
}

func xFullPathname(tls *libc.TLS, _, zName uintptr, nOut int32, zOut uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, uintptr, int32, uintptr) int32](baseVFS().FxFullPathname)(tls, base, zName, nOut, zOut)
}

func xLock(tls *libc.TLS, p uintptr, lock int32) int32 {
	return fn[func(*libc.TLS, uintptr, int32) int32](realMethods(p).FxLock)(tls, realFile(p), lock)
}

func xUnlock(tls *libc.TLS, p uintptr, lock int32) int32 {
	return fn[func(*libc.TLS, uintptr, int32) int32](realMethods(p).FxUnlock)(tls, realFile(p), lock)
}

func xCheckReservedLock(tls *libc.TLS, p, pResOut uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, uintptr) int32](realMethods(p).FxCheckReservedLock)(tls, realFile(p), pResOut)
}

func xSectorSize(tls *libc.TLS, p uintptr) int32 {
	return fn[func(*libc.TLS, uintptr) int32](realMethods(p).FxSectorSize)(tls, realFile(p))
}

func xDeviceCharacteristics(tls *libc.TLS, p uintptr) int32 {
	return fn[func(*libc.TLS, uintptr) int32](realMethods(p).FxDeviceCharacteristics)(tls, realFile(p))
}

func xShmMap(tls *libc.TLS, p uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	if realMethods(p).FxShmMap == 0 {
		return sqlite3.SQLITE_IOERR_SHMMAP
	}
	return fn[func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32](realMethods(p).FxShmMap)(tls, realFile(p), iPg, pgsz, bExtend, pp)
}

func xShmLock(tls *libc.TLS, p uintptr, offset, n, flags int32) int32 {
	if realMethods(p).FxShmLock == 0 {
		return sqlite3.SQLITE_IOERR_SHMLOCK
	}
	return fn[func(*libc.TLS, uintptr, int32, int32, int32) int32](realMethods(p).FxShmLock)(tls, realFile(p), offset, n, flags)
}

func xShmBarrier(tls *libc.TLS, p uintptr) {
	if realMethods(p).FxShmBarrier == 0 {
		return
	}
	fn[func(*libc.TLS, uintptr)](realMethods(p).FxShmBarrier)(tls, realFile(p))
}

func xShmUnmap(tls *libc.TLS, p uintptr, deleteFlag int32) int32 {
	if realMethods(p).FxShmUnmap == 0 {
		return sqlite3.SQLITE_OK
	}
	return fn[func(*libc.TLS, uintptr, int32) int32](realMethods(p).FxShmUnmap)(tls, realFile(p), deleteFlag)
}

func xUnfetch(tls *libc.TLS, p uintptr, iOfst int64, pData uintptr) int32 {
	if realMethods(p).FxUnfetch == 0 {
		return sqlite3.SQLITE_OK
	}
	return fn[func(*libc.TLS, uintptr, int64, uintptr) int32](realMethods(p).FxUnfetch)(tls, realFile(p), iOfst, pData)
}

// at returns the T at address p (C memory, or a Go global SQLite was
// given).
func at[T any](p uintptr) *T { return *(**T)(unsafe.Pointer(&p)) }

// bytesAt returns the n bytes of C memory at p.
func bytesAt(p uintptr, n int64) []byte { return unsafe.Slice(at[byte](p), n) }

// fn returns the function at p, a function pointer as the transpiled
// SQLite stores and calls it.
func fn[F any](p uintptr) F { return *(*F)(unsafe.Pointer(&p)) }

// fnPtr returns the function pointer of f, a top-level function, as the
// transpiled SQLite stores it.
func fnPtr(f any) uintptr { return (*[2]uintptr)(unsafe.Pointer(&f))[1] }
