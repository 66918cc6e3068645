package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The server's CPU and memory are read from /proc/<pid> (Linux), so the
// figures cost the server nothing and need no endpoint of it.

// atClkTck is the auxiliary-vector key of the kernel's USER_HZ.
const atClkTck = 17

// clockTicks is the unit of utime and stime in /proc/<pid>/stat, read
// from this process's auxiliary vector (the same for every process);
// 100 when it cannot be read.
var clockTicks = func() float64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil || strconv.IntSize != 64 {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
		if k == 0 {
			break
		}
		if k == atClkTck && v > 0 {
			return float64(v)
		}
	}
	return 100
}()

// cpuTime returns the user plus system CPU time the process has used so
// far (all its threads).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// the command name (field 2) is in parentheses and may hold spaces
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks float64
	for _, k := range []int{11, 12} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, k+3, err)
		}
		ticks += float64(v)
	}
	return time.Duration(ticks / clockTicks * float64(time.Second)), nil
}

// rssBytes returns the resident set size of the process (VmRSS).
func rssBytes(pid int) (int64, error) { return statusBytes(pid, "VmRSS") }

// statusBytes returns a size field of /proc/PID/status in bytes: VmRSS,
// or its parts RssAnon (the heap and stacks) and RssFile (mapped files,
// such as the SQLite database's memory mapping, which the kernel may
// reclaim).
func statusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: %s %q", pid, field, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// cpuMeter measures the server CPU spent between start and stop; with no
// pid it measures nothing.
type cpuMeter struct {
	pid   int
	t0    time.Time
	cpu0  time.Duration
	err   error
	Used  time.Duration // CPU used between start and stop
	Spent time.Duration // wall time between start and stop
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, t0: time.Now()}
	if pid > 0 {
		m.cpu0, m.err = cpuTime(pid)
	}
	return m
}

// stop ends the measurement; ok is false when the server's CPU is not
// known (no pid, or /proc unreadable). Work the server deferred past the
// last answer belongs to the writes too: the CPU is read once the server
// has settled (under 10% of a core over 200 ms, for at most 5 s); Spent
// ends at the call.
func (m *cpuMeter) stop() (ok bool) {
	m.Spent = time.Since(m.t0)
	if m.pid <= 0 || m.err != nil {
		return false
	}
	c, err := cpuTime(m.pid)
	for end := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
		var next time.Duration
		if next, err = cpuTime(m.pid); err == nil {
			busy := next - c
			c = next
			if busy < 20*time.Millisecond {
				break
			}
		}
	}
	if err != nil {
		m.err = err
		return false
	}
	m.Used = c - m.cpu0
	return true
}

// addPer adds the server CPU per unit of work (µs) and the cores busy,
// or a note when the CPU is not known.
func (m *cpuMeter) addPer(r *result, name string, units int) {
	if !m.stop() {
		if m.pid <= 0 {
			r.note("no -pid: server CPU not measured")
		} else {
			r.note("server CPU not measured: %v", m.err)
		}
		return
	}
	if units > 0 {
		r.add(name, float64(m.Used)/float64(units)/float64(time.Microsecond), "µs", -1)
	}
	r.add("cores", m.Used.Seconds()/m.Spent.Seconds(), "", 0) // deferred work included
}
