package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
)

// Imatrix is an importance matrix: for every weight matrix, the sum of the
// squared input activations of each column over a calibration text, and how
// many activation rows went into the sums. Mixture-of-experts tensors hold
// one such matrix per expert. Its file format is llama.cpp's (see the
// package documentation), so files move between tamp and llama.cpp.
type Imatrix struct {
	// Datasets names the calibration texts.
	Datasets []string
	// Chunks is the number of calibration chunks evaluated, ChunkSize their
	// length in tokens.
	Chunks, ChunkSize int
	// Entries maps a weight tensor's name to its statistics.
	Entries map[string]*ImatrixEntry
}

// ImatrixEntry holds one weight tensor's activation statistics.
type ImatrixEntry struct {
	// Sums has Cols·len(Counts) values: for matrix (expert) e, Sums[e·Cols+j]
	// is the sum of x_j² over the activation rows it saw.
	Sums []float64
	// Counts[e] is the number of activation rows matrix e saw.
	Counts []float64
	Cols   int
}

// Weights returns the importance of each column of matrix mat (0 for
// ordinary tensors, the expert for MoE tensors): the mean squared
// activation. A matrix that saw no input gets all ones, as in llama.cpp.
// The result is nil when the imatrix has no entry for name.
func (m *Imatrix) Weights(name string, mat, cols int) ([]float32, error) {
	if m == nil {
		return nil, nil
	}
	e, ok := m.Entries[name]
	if !ok {
		return nil, nil
	}
	if e.Cols != cols {
		return nil, fmt.Errorf("quant: imatrix entry %s has %d columns, the tensor has %d", name, e.Cols, cols)
	}
	if mat < 0 || mat >= len(e.Counts) {
		return nil, fmt.Errorf("quant: imatrix entry %s has %d matrices, asked for matrix %d", name, len(e.Counts), mat)
	}
	out := make([]float32, cols)
	c := e.Counts[mat]
	for j := range out {
		if c > 0 {
			out[j] = float32(e.Sums[mat*cols+j] / c)
		} else {
			out[j] = 1
		}
	}
	return out, nil
}

// weightsFor is Weights that also finds an expert's entry under the other
// expert layout's name: an imatrix collected on a file that stores experts
// as their own tensors, used on one that stacks them, or the reverse.
func (m *Imatrix) weightsFor(name string, mat, cols int) ([]float32, error) {
	if m == nil {
		return nil, nil
	}
	if _, ok := m.Entries[name]; ok {
		return m.Weights(name, mat, cols)
	}
	if l, kind, e, ok := model.ParseExpertTensorName(name); ok && mat == 0 {
		return m.Weights(fmt.Sprintf("blk.%d.%s_exps.weight", l, kind), e, cols)
	}
	if single, ok := SplitExpertName(name, mat); ok {
		return m.Weights(single, 0, cols)
	}
	return nil, nil
}

// Names lists the entries in sorted order.
func (m *Imatrix) Names() []string {
	names := make([]string, 0, len(m.Entries))
	for n := range m.Entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ImatrixCollector accumulates an importance matrix from forward passes:
// pass it as model.SessionOptions.Observer. It is safe for concurrent use by
// several sessions.
type ImatrixCollector struct {
	// ProcessOutput also collects output.weight, which llama-imatrix skips
	// by default (llama-quantize does not use it for the output matrix).
	ProcessOutput bool

	mu      sync.Mutex
	entries map[string]*ImatrixEntry
}

// MatMulInput adds the squares of n activation rows to w's entry.
func (c *ImatrixCollector) MatMulInput(w *tensor.Tensor, expert int, x []float32, n int) {
	if w.Name == "output.weight" && !c.ProcessOutput {
		return
	}
	cols := w.Cols()
	mats, mat := 1, 0
	// An expert of a stacked tensor is one of its matrices; an expert stored
	// as its own tensor (blk.N.ffn_gate.E.weight) is an ordinary matrix.
	if expert >= 0 && len(w.Dims) >= 3 {
		if expert >= w.Dims[2] {
			return
		}
		mats, mat = w.Dims[2], expert
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*ImatrixEntry{}
	}
	e := c.entries[w.Name]
	if e == nil {
		e = &ImatrixEntry{Sums: make([]float64, cols*mats), Counts: make([]float64, mats), Cols: cols}
		c.entries[w.Name] = e
	}
	sums := e.Sums[mat*cols : (mat+1)*cols]
	for i := 0; i < n; i++ {
		for j, v := range x[i*cols : (i+1)*cols] {
			sums[j] += float64(v) * float64(v)
		}
	}
	e.Counts[mat] += float64(n)
}

// Routed does nothing: routing statistics are ExpertStats' job.
func (c *ImatrixCollector) Routed(int, []int, []float32) {}

// Imatrix returns a copy of what was collected, labelled with the dataset
// name and chunk counts.
func (c *ImatrixCollector) Imatrix(dataset string, chunks, chunkSize int) *Imatrix {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &Imatrix{Chunks: chunks, ChunkSize: chunkSize, Entries: map[string]*ImatrixEntry{}}
	if dataset != "" {
		m.Datasets = []string{dataset}
	}
	for n, e := range c.entries {
		m.Entries[n] = &ImatrixEntry{Sums: append([]float64(nil), e.Sums...), Counts: append([]float64(nil), e.Counts...), Cols: e.Cols}
	}
	return m
}

// imatrix GGUF keys and tensor suffixes, as llama-imatrix writes them.
const (
	imatrixKeyDatasets   = "imatrix.datasets"
	imatrixKeyChunkCount = "imatrix.chunk_count"
	imatrixKeyChunkSize  = "imatrix.chunk_size"
	imatrixSumsSuffix    = ".in_sum2"
	imatrixCountsSuffix  = ".counts"
)

// GGUF returns the importance matrix as llama-imatrix's GGUF file.
func (m *Imatrix) GGUF() (*gguf.File, error) {
	f := gguf.New()
	f.Set("general.type", gguf.String("imatrix"))
	f.Set(imatrixKeyDatasets, gguf.StringArray(append([]string{}, m.Datasets...)))
	f.Set(imatrixKeyChunkCount, gguf.Uint32(uint32(m.Chunks)))
	f.Set(imatrixKeyChunkSize, gguf.Uint32(uint32(m.ChunkSize)))
	for _, name := range m.Names() {
		e := m.Entries[name]
		mats := len(e.Counts)
		if mats == 0 || e.Cols <= 0 || len(e.Sums) != e.Cols*mats {
			return nil, fmt.Errorf("quant: imatrix entry %s is inconsistent (%d sums, %d columns, %d matrices)", name, len(e.Sums), e.Cols, mats)
		}
		sums := make([]byte, 4*len(e.Sums))
		for i, v := range e.Sums {
			binary.LittleEndian.PutUint32(sums[4*i:], math.Float32bits(float32(v)))
		}
		counts := make([]byte, 4*mats)
		for i, v := range e.Counts {
			binary.LittleEndian.PutUint32(counts[4*i:], math.Float32bits(float32(v)))
		}
		if err := f.AddTensor(name+imatrixSumsSuffix, tensor.F32, []uint64{uint64(e.Cols), uint64(mats)}, sums); err != nil {
			return nil, err
		}
		if err := f.AddTensor(name+imatrixCountsSuffix, tensor.F32, []uint64{1, uint64(mats)}, counts); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// WriteImatrix writes m to path in llama-imatrix's GGUF format, atomically.
func WriteImatrix(path string, m *Imatrix) error {
	f, err := m.GGUF()
	if err != nil {
		return err
	}
	return gguf.WriteFile(path, f)
}

// ReadImatrix reads an importance matrix file: llama-imatrix's GGUF format
// (what tamp writes) or its legacy binary .dat format.
func ReadImatrix(path string) (*Imatrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := ParseImatrix(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseImatrix decodes an importance matrix from the bytes of a GGUF or
// legacy .dat imatrix file. Malformed input yields an error naming the
// problem.
func ParseImatrix(data []byte) (*Imatrix, error) {
	if bytes.HasPrefix(data, []byte("GGUF")) {
		f, err := gguf.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("imatrix: %w", err)
		}
		return imatrixFromGGUF(f)
	}
	return parseLegacyImatrix(data)
}

func imatrixFromGGUF(f *gguf.File) (*Imatrix, error) {
	m := &Imatrix{Entries: map[string]*ImatrixEntry{}}
	if t, ok := f.String("general.type"); ok && t != "imatrix" {
		return nil, fmt.Errorf("imatrix: GGUF general.type is %q, not \"imatrix\" (is this a model file?)", t)
	}
	m.Datasets, _ = f.Strings(imatrixKeyDatasets)
	if v, ok := f.Uint(imatrixKeyChunkCount); ok && v <= math.MaxInt32 {
		m.Chunks = int(v)
	}
	if v, ok := f.Uint(imatrixKeyChunkSize); ok && v <= math.MaxInt32 {
		m.ChunkSize = int(v)
	}
	type pair struct{ sums, counts *gguf.Tensor }
	pairs := map[string]*pair{}
	for _, t := range f.Tensors {
		var name string
		var isSums bool
		switch {
		case strings.HasSuffix(t.Name, imatrixSumsSuffix):
			name, isSums = strings.TrimSuffix(t.Name, imatrixSumsSuffix), true
		case strings.HasSuffix(t.Name, imatrixCountsSuffix):
			name = strings.TrimSuffix(t.Name, imatrixCountsSuffix)
		default:
			continue
		}
		if t.Type != tensor.F32 {
			return nil, fmt.Errorf("imatrix: tensor %s is %s, want F32", t.Name, t.Type)
		}
		p := pairs[name]
		if p == nil {
			p = &pair{}
			pairs[name] = p
		}
		if isSums {
			p.sums = t
		} else {
			p.counts = t
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("imatrix: the GGUF file has no %s/%s tensors", imatrixSumsSuffix, imatrixCountsSuffix)
	}
	for name, p := range pairs {
		if p.sums == nil || p.counts == nil {
			return nil, fmt.Errorf("imatrix: entry %s lacks its %s or %s tensor", name, imatrixSumsSuffix, imatrixCountsSuffix)
		}
		if len(p.sums.Dims) < 1 || len(p.sums.Dims) > 2 {
			return nil, fmt.Errorf("imatrix: %s%s has shape %v, want [columns, matrices]", name, imatrixSumsSuffix, p.sums.Dims)
		}
		cols := p.sums.Dims[0]
		mats := uint64(1)
		if len(p.sums.Dims) == 2 {
			mats = p.sums.Dims[1]
		}
		counts := tensor.F32s(p.counts.Data)
		if uint64(len(counts)) != mats {
			return nil, fmt.Errorf("imatrix: entry %s has %d matrices but %d counts", name, mats, len(counts))
		}
		sums := tensor.F32s(p.sums.Data)
		e := &ImatrixEntry{Cols: int(cols), Sums: make([]float64, len(sums)), Counts: make([]float64, len(counts))}
		for i, v := range sums {
			e.Sums[i] = float64(v)
		}
		for i, v := range counts {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("imatrix: entry %s has invalid count %g", name, v)
			}
			e.Counts[i] = float64(v)
		}
		m.Entries[name] = e
	}
	return m, nil
}

// parseLegacyImatrix reads llama.cpp's original binary format: int32 entry
// count; per entry int32 name length, name, int32 ncall, int32 nval, nval
// float32 values (mean squared activation times ncall); then optionally
// int32 chunk count, int32 dataset-name length and the name. Values are
// stored as Sums with Counts = ncall, which Weights divides back out.
func parseLegacyImatrix(data []byte) (*Imatrix, error) {
	off := 0
	i32 := func(what string) (int32, error) {
		if len(data)-off < 4 {
			return 0, fmt.Errorf("imatrix: truncated legacy file: %s at byte %d", what, off)
		}
		v := int32(binary.LittleEndian.Uint32(data[off:]))
		off += 4
		return v, nil
	}
	n, err := i32("entry count")
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("imatrix: not a GGUF file, and as a legacy .dat file it holds %d entries", n)
	}
	// Each entry needs at least 16 bytes; refuse counts the data cannot hold
	// before allocating for them.
	if int64(n) > int64(len(data)-off)/16 {
		return nil, fmt.Errorf("imatrix: legacy file claims %d entries but has only %d bytes", n, len(data))
	}
	m := &Imatrix{Entries: map[string]*ImatrixEntry{}}
	for i := 0; i < int(n); i++ {
		l, err := i32(fmt.Sprintf("entry %d name length", i))
		if err != nil {
			return nil, err
		}
		if l <= 0 || int(l) > len(data)-off {
			return nil, fmt.Errorf("imatrix: entry %d: name length %d at byte %d is invalid", i, l, off-4)
		}
		name := string(data[off : off+int(l)])
		off += int(l)
		ncall, err := i32("ncall of " + name)
		if err != nil {
			return nil, err
		}
		nval, err := i32("value count of " + name)
		if err != nil {
			return nil, err
		}
		if ncall <= 0 || nval <= 0 {
			return nil, fmt.Errorf("imatrix: entry %s: ncall %d and value count %d must be positive", name, ncall, nval)
		}
		if int64(nval) > int64(len(data)-off)/4 {
			return nil, fmt.Errorf("imatrix: entry %s: %d values run past the end of the file", name, nval)
		}
		if _, dup := m.Entries[name]; dup {
			return nil, fmt.Errorf("imatrix: entry %s appears twice", name)
		}
		// The legacy format does not say how many matrices (experts) an
		// entry holds; Cols is fixed once a tensor is known (see Bind).
		e := &ImatrixEntry{Cols: int(nval), Sums: make([]float64, nval), Counts: []float64{float64(ncall)}}
		for j := range e.Sums {
			e.Sums[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*j:])))
		}
		off += 4 * int(nval)
		m.Entries[name] = e
	}
	if len(data)-off >= 8 {
		chunks, _ := i32("chunk count")
		dl, _ := i32("dataset length")
		if chunks > 0 {
			m.Chunks = int(chunks)
		}
		if dl > 0 && int(dl) <= len(data)-off {
			m.Datasets = []string{string(data[off : off+int(dl)])}
		}
	}
	return m, nil
}

// Bind fits legacy entries, which do not record their matrix count, to the
// tensors of a model: an entry whose length is a multiple of the tensor's
// row length is split into that many matrices with the same count. GGUF
// entries are left alone. It reports entries that fit no tensor.
func (m *Imatrix) Bind(f *gguf.File) error {
	for name, e := range m.Entries {
		t, ok := f.Tensor(name)
		if !ok || len(t.Dims) == 0 {
			continue
		}
		cols := int(t.Dims[0])
		if e.Cols == cols {
			continue
		}
		if len(e.Counts) != 1 || cols <= 0 || len(e.Sums)%cols != 0 {
			return fmt.Errorf("quant: imatrix entry %s has %d values, which do not fit rows of %d", name, len(e.Sums), cols)
		}
		mats := len(e.Sums) / cols
		e.Cols = cols
		c := e.Counts[0]
		e.Counts = make([]float64, mats)
		for i := range e.Counts {
			e.Counts[i] = c
		}
	}
	return nil
}

// CollectOptions configure CollectImatrix.
type CollectOptions struct {
	// Ctx is the chunk length in tokens; the token stream is cut into
	// len/Ctx chunks (at most Chunks when it is positive), each evaluated
	// from an empty context with its first token replaced by BOS when
	// AddBOS is set, as llama-imatrix does.
	Ctx, Chunks int
	BOS         int32
	AddBOS      bool
	// ProcessOutput also collects output.weight.
	ProcessOutput bool
	// Dataset names the calibration text in the file.
	Dataset string
	// Observer, if set, also watches the passes (expert statistics).
	Observer model.Observer
	// Progress, if set, is called after each chunk.
	Progress func(done, total int)
}

// CollectImatrix runs m over tokens and returns the importance matrix of
// its weight matrices.
func CollectImatrix(ctx context.Context, m *model.Model, tokens []int32, opts CollectOptions) (*Imatrix, error) {
	if opts.Ctx <= 0 {
		return nil, fmt.Errorf("quant: imatrix chunk length must be positive")
	}
	n := len(tokens) / opts.Ctx
	if opts.Chunks > 0 {
		n = min(n, opts.Chunks)
	}
	if n == 0 {
		return nil, fmt.Errorf("quant: the calibration text has %d tokens, fewer than one chunk of %d", len(tokens), opts.Ctx)
	}
	col := &ImatrixCollector{ProcessOutput: opts.ProcessOutput}
	var obs model.Observer = col
	if opts.Observer != nil {
		obs = multiObserver{col, opts.Observer}
	}
	sess, err := m.NewSession(model.SessionOptions{Context: opts.Ctx, Observer: obs})
	if err != nil {
		return nil, err
	}
	chunk := make([]int32, opts.Ctx)
	for c := 0; c < n; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(chunk, tokens[c*opts.Ctx:(c+1)*opts.Ctx])
		if opts.AddBOS {
			chunk[0] = opts.BOS
		}
		sess.Reset()
		if _, err := sess.Forward(chunk, false); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(c+1, n)
		}
	}
	return col.Imatrix(opts.Dataset, n, opts.Ctx), nil
}

// multiObserver fans one forward pass out to several observers.
type multiObserver []model.Observer

func (m multiObserver) MatMulInput(w *tensor.Tensor, expert int, x []float32, n int) {
	for _, o := range m {
		o.MatMulInput(w, expert, x, n)
	}
}

func (m multiObserver) Routed(layer int, experts []int, weights []float32) {
	for _, o := range m {
		o.Routed(layer, experts, weights)
	}
}

// ImatrixStat summarises one entry for printing.
type ImatrixStat struct {
	Name           string
	Matrices, Cols int
	Count          float64 // activation rows seen (all matrices)
	Mean, Max, CV  float64 // of the per-column importances
	TopShare       float64 // share of the total importance in the top 1% of columns
}

// Stats summarises every entry, in name order.
func (m *Imatrix) Stats() []ImatrixStat {
	var out []ImatrixStat
	for _, name := range m.Names() {
		e := m.Entries[name]
		s := ImatrixStat{Name: name, Matrices: len(e.Counts), Cols: e.Cols}
		var vals []float64
		for mat, c := range e.Counts {
			s.Count += c
			if c <= 0 {
				continue
			}
			for j := 0; j < e.Cols; j++ {
				vals = append(vals, e.Sums[mat*e.Cols+j]/c)
			}
		}
		var sum, sum2 float64
		for _, v := range vals {
			sum += v
			sum2 += v * v
			s.Max = math.Max(s.Max, v)
		}
		if len(vals) > 0 {
			s.Mean = sum / float64(len(vals))
			if s.Mean > 0 {
				s.CV = math.Sqrt(math.Max(0, sum2/float64(len(vals))-s.Mean*s.Mean)) / s.Mean
			}
			sort.Sort(sort.Reverse(sort.Float64Slice(vals)))
			top := max(1, len(vals)/100)
			var ts float64
			for _, v := range vals[:top] {
				ts += v
			}
			if sum > 0 {
				s.TopShare = ts / sum
			}
		}
		out = append(out, s)
	}
	return out
}
