package bench

import (
	"bytes"
	"os"
	"strconv"
)

// statusBytes reads a size field ("VmRSS", "VmHWM") of /proc/self/status in
// bytes, or 0 where the system has none.
func statusBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// PeakRSS is the process's peak resident set size (VmHWM on Linux) since it
// started or since the last successful ResetPeakRSS; 0 where the system does
// not report it. Memory-mapped weights count once touched.
func PeakRSS() int64 { return statusBytes("VmHWM") }

// RSS is the process's resident set size now (VmRSS), 0 where unknown.
func RSS() int64 { return statusBytes("VmRSS") }

// ResetPeakRSS makes the peak resident set size start again from the
// current size (Linux ≥ 4.0: writing 5 to /proc/self/clear_refs), so that
// PeakRSS measures one phase of a run. It reports whether it could.
func ResetPeakRSS() bool {
	f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	_, werr := f.Write([]byte("5"))
	cerr := f.Close()
	return werr == nil && cerr == nil
}
