package sweep

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// File names inside a sweep directory.
const (
	PointsJSONL = "points.jsonl"
	PointsCSV   = "points.csv"
)

// Point is one measured combination of a weight format and a KV setting.
// Figures that were not measured are 0.
type Point struct {
	// Key identifies the point: the sweep's fingerprint (model, text and
	// settings), the weights spec and the KV spec. A restarted sweep skips
	// every key already stored.
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
	Weights     string `json:"weights"`
	KV          string `json:"kv"`
	// Policy is the KV setting's family (see KV.Policy).
	Policy string `json:"policy"`
	// Types summarises the tensor types of the weights ("25 Q8_0, 2 F32").
	Types string `json:"types"`

	Ctx       int `json:"ctx"`
	Chunks    int `json:"chunks"`
	Positions int `json:"positions"` // scored positions

	WeightBytes int64   `json:"weight_bytes"`
	BPW         float64 `json:"bits_per_weight"`
	// KVBytes is the cache's size once the context holds Ctx tokens (the
	// mean over chunks); KVPeakBytes the largest it was at any moment, which
	// for policies that compress after the prompt includes the uncompressed
	// prompt; KVFullBytes what a full F16/F32 cache of Ctx tokens takes.
	KVBytes     int64 `json:"kv_bytes"`
	KVPeakBytes int64 `json:"kv_peak_bytes"`
	KVFullBytes int64 `json:"kv_full_bytes"`
	// TotalBytes is WeightBytes + KVBytes.
	TotalBytes int64 `json:"total_bytes"`

	PPL     float64 `json:"ppl"`
	PPLErr  float64 `json:"ppl_err"`
	KLD     float64 `json:"kld_mean"` // mean KL(base ‖ point), nats
	KLDErr  float64 `json:"kld_err"`
	KLDP99  float64 `json:"kld_p99"`
	SameTop float64 `json:"same_top"` // fraction of positions whose top token agrees with the base

	// PromptTPS and GenTPS are the median prompt-processing and generation
	// speeds in tokens per second, measured with SpeedThreads threads while
	// nothing else of the sweep ran.
	PromptTPS    float64 `json:"prompt_tok_s"`
	GenTPS       float64 `json:"gen_tok_s"`
	SpeedThreads int     `json:"speed_threads"`
	// Workers points were evaluated at once, with Threads threads each.
	Workers int `json:"workers"`
	Threads int `json:"threads"`

	Seconds  float64 `json:"seconds"` // wall time from start to finish, including waits for quantization and timing of other points
	Finished string  `json:"finished"`
}

// sanitize replaces values JSON cannot hold (NaN, ±Inf) by 0, "not measured".
func (p *Point) sanitize() {
	for _, f := range []*float64{&p.BPW, &p.PPL, &p.PPLErr, &p.KLD, &p.KLDErr, &p.KLDP99, &p.SameTop, &p.PromptTPS, &p.GenTPS, &p.Seconds} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
}

// Store keeps a sweep's finished points in DIR/points.jsonl, one JSON object
// per line, appended and synced to disk as each point finishes, and mirrors
// them in DIR/points.csv. A point is written only once it is complete, so an
// interrupted sweep leaves no partial point behind; a line torn by a crash
// mid-write is dropped when the store is reopened.
type Store struct {
	dir string

	mu     sync.Mutex
	f      *os.File
	points []Point
	byKey  map[string]int
}

// OpenStore opens (creating if needed) the store in dir and reads the points
// it already holds.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, PointsJSONL)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, f: f, byKey: map[string]int{}}
	good, err := s.load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sweep: %s: %w", path, err)
	}
	// Drop a torn last line so that the next append starts on a fresh one.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load reads the stored points and returns the length of the intact prefix.
func (s *Store) load(r io.Reader) (int64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	var off int64
	line := 0
	for len(data) > 0 {
		line++
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// No newline: the last write did not finish.
			return off, nil
		}
		text := bytes.TrimSpace(data[:i])
		if len(text) > 0 {
			var p Point
			if err := json.Unmarshal(text, &p); err != nil {
				return 0, fmt.Errorf("line %d is not a point: %v", line, err)
			}
			if p.Key == "" {
				return 0, fmt.Errorf("line %d has no key", line)
			}
			s.put(p)
		}
		off += int64(i + 1)
		data = data[i+1:]
	}
	return off, nil
}

// put records p, a later point replacing an earlier one of the same key.
func (s *Store) put(p Point) {
	if i, ok := s.byKey[p.Key]; ok {
		s.points[i] = p
		return
	}
	s.byKey[p.Key] = len(s.points)
	s.points = append(s.points, p)
}

// Has reports whether a point with this key is stored.
func (s *Store) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byKey[key]
	return ok
}

// Get returns the stored point with this key.
func (s *Store) Get(key string) (Point, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byKey[key]
	if !ok {
		return Point{}, false
	}
	return s.points[i], true
}

// Points returns a copy of every stored point, in the order they finished.
func (s *Store) Points() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.points...)
}

// Add writes a finished point: one line appended to points.jsonl and synced,
// then points.csv rewritten.
func (s *Store) Add(p Point) error {
	if p.Key == "" {
		return fmt.Errorf("sweep: point has no key")
	}
	p.sanitize()
	line, err := json.Marshal(p)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("sweep: store is closed")
	}
	if _, err := s.f.Write(line); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.put(p)
	return writeCSV(filepath.Join(s.dir, PointsCSV), s.points)
}

// Close closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// csvHeader names the CSV columns, in Point's order.
var csvHeader = []string{"weights", "kv", "policy", "types", "ctx", "chunks", "positions",
	"weight_bytes", "bits_per_weight", "kv_bytes", "kv_peak_bytes", "kv_full_bytes", "total_bytes",
	"ppl", "ppl_err", "kld_mean", "kld_err", "kld_p99", "same_top",
	"prompt_tok_s", "gen_tok_s", "speed_threads", "seconds", "finished", "fingerprint"}

func csvRow(p Point) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	return []string{p.Weights, p.KV, p.Policy, p.Types, i(int64(p.Ctx)), i(int64(p.Chunks)), i(int64(p.Positions)),
		i(p.WeightBytes), f(p.BPW), i(p.KVBytes), i(p.KVPeakBytes), i(p.KVFullBytes), i(p.TotalBytes),
		f(p.PPL), f(p.PPLErr), f(p.KLD), f(p.KLDErr), f(p.KLDP99), f(p.SameTop),
		f(p.PromptTPS), f(p.GenTPS), i(int64(p.SpeedThreads)), f(p.Seconds), p.Finished, p.Fingerprint}
}

// writeCSV writes points to path through a temporary file and a rename, so
// that a reader never sees half a table.
func writeCSV(path string, points []Point) error {
	return writeAtomic(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		for _, p := range points {
			if err := cw.Write(csvRow(p)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

// writeAtomic writes a file through a temporary file in the same directory
// and renames it into place.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
