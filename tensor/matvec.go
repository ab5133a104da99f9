package tensor

import (
	"fmt"
	"sync"

	"tamp/internal/par"
)

// ConvertActivation converts x to VecDotType(t), the form DotRow takes for
// weights of type t: F32 as raw little-endian float bits, F16/BF16 as halves,
// Q8_0/Q8_1/Q8_K as blocks made by ggml's reference quantizers. The result is
// written into dst when it is large enough (else into a new slice) and
// returned, sliced to its exact size. It panics if len(x) is not a whole
// number of the vec-dot type's blocks or t is not Supported; MatVec checks
// both first.
func ConvertActivation(t Type, x []float32, dst []byte) []byte {
	vt := VecDotType(t)
	if !Supported(t) {
		panic(unsupportedError(t))
	}
	size, err := RowBytes(vt, len(x))
	if err != nil {
		panic(err)
	}
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	if f, ok := simdConvert[vt]; ok && useSIMD {
		f(x, dst)
		return dst
	}
	switch vt {
	case F32:
		if v := viewF32(dst); v != nil {
			copy(v, x)
		} else {
			for i, f := range x {
				putF32(dst[4*i:], f)
			}
		}
	case F16:
		for i, f := range x {
			putF16(dst[2*i:], F32ToF16(f))
		}
	case BF16:
		for i, f := range x {
			putF16(dst[2*i:], F32ToBF16(f))
		}
	case Q8_0:
		QuantizeQ8_0(x, dst)
	case Q8_1:
		QuantizeQ8_1(x, dst)
	case Q8_K:
		QuantizeQ8_K(x, dst)
	default:
		panic(fmt.Sprintf("tensor: no activation conversion to %s", vt))
	}
	return dst
}

// parallelMin is the number of multiply-adds below which a product runs on
// the calling goroutine: handing out a job costs about a microsecond, as
// much as this many multiply-adds.
const parallelMin = 1 << 16

// Cache budgets for batched products. A task takes a range of weight rows
// small enough to stay in a core's L2 cache (rowBudget bytes) and runs them
// against blocks of activation rows that also fit there (colBudget bytes),
// so each weight row is read from memory once per product and reused from
// cache for every activation row, instead of once per activation row.
const (
	rowBudget = 96 << 10
	colBudget = 192 << 10
)

// actBufs recycles converted-activation buffers: decoding calls MatVec for
// every weight matrix of every token, and a fresh buffer each time would
// only feed the garbage collector.
var actBufs = sync.Pool{New: func() any { return new([]byte) }}

// matJobs recycles the job descriptions MatMul hands to the worker pool,
// so that a product allocates nothing in steady state.
var matJobs = sync.Pool{New: func() any { return new(matJob) }}

func checkWeights(w *Tensor) (Kernel, error) {
	if err := w.Check(); err != nil {
		return Kernel{}, err
	}
	k, ok := kernels[w.Type]
	if !ok {
		return Kernel{}, fmt.Errorf("tensor %q: %w", w.Name, unsupportedError(w.Type))
	}
	if _, err := RowBytes(k.VecDotType, w.Cols()); err != nil {
		// Cannot happen for ggml's types (each shares its activation
		// type's block size) but a tamp type might pair badly.
		return Kernel{}, fmt.Errorf("tensor %q: activations: %w", w.Name, err)
	}
	return k, nil
}

// MatVec computes out[r] = (row r of w) · x for every row of w. x is converted
// once to VecDotType(w.Type) and each row is dotted with it, as llama.cpp's
// CPU backend does. The integer block sums are exact; only the float
// summation order can differ from DotRow's (SIMD kernels sum in several
// lanes), by float rounding: see SIMD. len(x) must be w.Cols() and len(out)
// w.Rows(); a size mismatch, malformed tensor or unsupported type returns an
// error. Rows are spread over Threads() threads; MatVec does not allocate in
// steady state.
func MatVec(w *Tensor, x []float32, out []float32) error {
	return MatMul(w, x, 1, out)
}

// MatMul applies w to n input vectors: x holds them row-major (n × w.Cols())
// and out receives n × w.Rows() results, row-major, with the same semantics as
// MatVec for each vector; each result is bit-identical to what MatVec gives
// for that vector alone, so batching never changes a value. The product is
// cache-blocked: each weight row is read from memory once per call and used
// against all n vectors.
func MatMul(w *Tensor, x []float32, n int, out []float32) error {
	return MatMulSet(x, n, Product{W: w, Out: out})
}

// Product is one weight matrix of a MatMulSet and the n × W.Rows() values
// that receive its results.
type Product struct {
	W   *Tensor
	Out []float32
}

// MatMulSet computes MatMul(p.W, x, n, p.Out) for every product p: several
// matrices applied to the same input, such as a layer's query, key and
// value projections. The results are MatMul's to the bit; the difference is
// that all the products' rows are handed to the worker pool as one job, so
// the threads meet once instead of once per matrix, which matters when
// decoding runs a few hundred small products per token. Inputs are checked
// before anything is computed; on error no output is written.
func MatMulSet(x []float32, n int, ps ...Product) error {
	var jobs [4]*matJob
	js := jobs[:0]
	if len(ps) > len(jobs) {
		js = make([]*matJob, 0, len(ps))
	}
	defer func() {
		for _, j := range js {
			j.release()
		}
	}()
	for _, p := range ps {
		j := matJobs.Get().(*matJob)
		js = append(js, j)
		if err := j.setup(p.W, x, n, p.Out); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	pool := workers()
	threads := pool.Threads()

	convertInputs(pool, x, js)

	if len(js) == 1 {
		j := js[0]
		j.split(threads)
		pool.Run(j.tasks, j)
		return nil
	}
	set := setJobs.Get().(*setJob)
	defer func() {
		clear(set.jobs)
		set.jobs, set.ends, set.total = set.jobs[:0], set.ends[:0], 0
		setJobs.Put(set)
	}()
	for _, j := range js {
		j.split(threads)
		set.jobs = append(set.jobs, j)
		set.ends = append(set.ends, set.total+j.tasks)
		set.total += j.tasks
	}
	pool.Run(set.total, set)
	return nil
}

// MatMulPair computes MatMul(a, x, n, outA) and MatMul(b, x, n, outB) for
// two matrices of the same shape as one pool job whose tasks each compute
// the same range of rows of both and then call done(lo, hi): rows
// [lo, hi) of every vector are then final in outA and outB (value c·rows+r
// for vector c and row r), so element-wise work that combines the two,
// such as SwiGLU's gate, runs on the threads while those rows are in
// cache and without a job of its own. done is called once per range, from
// any thread, concurrently with other ranges; it must touch only its rows.
// The products are MatMul's to the bit.
func MatMulPair(a, b *Tensor, x []float32, n int, outA, outB []float32, done func(lo, hi int)) error {
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() {
		return fmt.Errorf("tensor %q (%d×%d) and %q (%d×%d): a pair must have one shape", a.Name, a.Cols(), a.Rows(), b.Name, b.Cols(), b.Rows())
	}
	ja, jb := matJobs.Get().(*matJob), matJobs.Get().(*matJob)
	defer ja.release()
	defer jb.release()
	if err := ja.setup(a, x, n, outA); err != nil {
		return err
	}
	if err := jb.setup(b, x, n, outB); err != nil {
		return err
	}
	if n == 0 || ja.rows == 0 {
		return nil
	}
	pool := workers()
	threads := pool.Threads()
	pair := [2]*matJob{ja, jb}
	convertInputs(pool, x, pair[:])
	ja.split(threads)
	jb.split(threads)
	rpt := max(ja.rowsPerTask, jb.rowsPerTask)
	if n == 1 && rpt < ja.rows {
		// A task does two products: half the rows keeps the number of
		// tasks, and so the balance between threads, of a MatMulSet.
		rpt = max((rpt+1)/2, 4)
	}
	if ja.gemm != nil || jb.gemm != nil {
		rpt = (rpt + gemmRows - 1) / gemmRows * gemmRows
	}
	ja.rowsPerTask, jb.rowsPerTask = rpt, rpt
	pj := pairJobs.Get().(*pairJob)
	defer func() {
		*pj = pairJob{}
		pairJobs.Put(pj)
	}()
	*pj = pairJob{a: ja, b: jb, done: done, rpt: rpt, rows: ja.rows}
	pool.Run((ja.rows+rpt-1)/rpt, pj)
	return nil
}

// pairJob is a MatMulPair: task i is task i of both products, then done.
type pairJob struct {
	a, b      *matJob
	done      func(lo, hi int)
	rpt, rows int
}

var pairJobs = sync.Pool{New: func() any { return new(pairJob) }}

func (p *pairJob) Task(i int) {
	p.a.Task(i)
	p.b.Task(i)
	if p.done != nil {
		lo := i * p.rpt
		p.done(lo, min(lo+p.rpt, p.rows))
	}
}

// setJob runs the tasks of several matJobs as one job: task numbers
// [ends[i-1], ends[i]) are jobs[i]'s.
type setJob struct {
	jobs  []*matJob
	ends  []int
	total int
}

var setJobs = sync.Pool{New: func() any { return new(setJob) }}

func (s *setJob) Task(t int) {
	for i, e := range s.ends {
		if t < e {
			if i > 0 {
				t -= s.ends[i-1]
			}
			s.jobs[i].Task(t)
			return
		}
	}
}

// setup checks one product and prepares its job: kernels, activation
// buffers (taken from pools; release returns them).
func (j *matJob) setup(w *Tensor, x []float32, n int, out []float32) error {
	*j = matJob{}
	k, err := checkWeights(w)
	if err != nil {
		return err
	}
	cols, rows := w.Cols(), w.Rows()
	if n < 0 || len(x) != n*cols {
		return fmt.Errorf("tensor %q: input has %d values, want %d vectors of %d", w.Name, len(x), n, cols)
	}
	if len(out) != n*rows {
		return fmt.Errorf("tensor %q: output has room for %d values, want %d vectors of %d", w.Name, len(out), n, rows)
	}
	if n == 0 || rows == 0 {
		return nil // a job of no vectors: nothing to convert or compute
	}
	xb, _ := RowBytes(k.VecDotType, cols)
	j.bp = getBytes(n * xb)
	*j = matJob{
		t: w.Type, x: x, data: w.Data, rb: w.RowBytes(), cols: cols, rows: rows,
		n: n, xq: *j.bp, xb: xb, out: out, kern: kernelFor(w.Type, k), bp: j.bp,
	}

	// A batch of at least one tile's worth of vectors goes through the
	// eight-row kernel, which wants each vector's block scales as float32
	// (and for Q4_0 its block sums).
	if g := gemmFor(w.Type); g != nil && n >= gemmCols && rows >= gemmRows {
		ti, _ := w.Type.Info()
		j.gemm = g
		j.nb = cols / ti.BlockSize
		if g.dy {
			j.dyp = getF32(n * j.nb)
			j.dy = *j.dyp
		}
		if g.corr {
			j.corrp = getI32(n * j.nb)
			j.corr = *j.corrp
		}
	}

	// F16 batches go three vectors at a time through a kernel that reads
	// the activations widened to float32.
	if fb := f16BatchFor(w.Type); fb != nil && n >= 3 {
		j.f16 = fb
		j.yfp = getF32(n * cols)
		j.yf = *j.yfp
	}

	// A vector or two (decoding) goes through the type's decoding kernel,
	// which wants the activations rewritten in its own layout.
	if vk := vecFor(w.Type); vk != nil && j.gemm == nil && n < gemmCols && cols > 0 {
		ti, _ := w.Type.Info()
		j.vec = vk
		j.nb = cols / ti.BlockSize
		j.vb = vk.size(j.nb)
		j.yvp = getBytes(n * j.vb)
		j.yv = *j.yvp
	}
	return nil
}

// convertInputs converts the input x of the jobs' products, in parallel
// when there are many vectors. A job whose weights have the type and
// kernels of an earlier one (a layer's Q, K and V usually do) takes that
// job's converted activations instead of converting the same input again.
func convertInputs(pool *par.Pool, x []float32, js []*matJob) {
	for i, j := range js {
		if src := sameInput(js[:i], j); src != nil {
			j.borrow(src)
			continue
		}
		if j.n > 1 && len(x) >= parallelMin && pool.Threads() > 1 {
			j.converting = true
			pool.Run(j.n, j)
			j.converting = false
			continue
		}
		for v := 0; v < j.n; v++ {
			j.convert(v)
		}
	}
}

// sameInput returns a job among js whose converted activations j can use,
// or nil.
func sameInput(js []*matJob, j *matJob) *matJob {
	for _, k := range js {
		if k.n > 0 && k.n == j.n && k.t == j.t && k.cols == j.cols &&
			k.gemm == j.gemm && k.vec == j.vec && k.f16 == j.f16 {
			return k
		}
	}
	return nil
}

// borrow makes j read src's converted activations, returning its own
// buffers; src must outlive j's tasks (both belong to one product set).
func (j *matJob) borrow(src *matJob) {
	j.putBuffers()
	j.xq, j.yv, j.dy, j.corr, j.yf = src.xq, src.yv, src.dy, src.corr, src.yf
}

// putBuffers returns the job's own buffers to their pools.
func (j *matJob) putBuffers() {
	if j.bp != nil {
		actBufs.Put(j.bp)
	}
	if j.yvp != nil {
		actBufs.Put(j.yvp)
	}
	if j.dyp != nil {
		f32Bufs.Put(j.dyp)
	}
	if j.yfp != nil {
		f32Bufs.Put(j.yfp)
	}
	if j.corrp != nil {
		i32Bufs.Put(j.corrp)
	}
	j.bp, j.yvp, j.dyp, j.yfp, j.corrp = nil, nil, nil, nil, nil
}

// release returns the job's buffers and the job to their pools.
func (j *matJob) release() {
	j.putBuffers()
	*j = matJob{} // drop references to the caller's data
	matJobs.Put(j)
}

// split chooses how many weight rows a task takes.
func (j *matJob) split(threads int) {
	rows, cols, n := j.rows, j.cols, j.n
	if rows == 0 || n == 0 {
		j.tasks = 0
		return
	}
	work := rows * cols * n
	switch {
	case work < parallelMin || threads == 1 && n == 1:
		j.rowsPerTask = rows
	case n == 1:
		// Several tasks per thread, so that a thread slowed by other
		// work on its core leaves its share to the others.
		j.rowsPerTask = max((rows+8*threads-1)/(8*threads), 4)
	default:
		// Batches keep a task's rows within L2 even on one thread: the
		// eight-row kernels pack them and reuse them for every vector.
		j.rowsPerTask = max(min(rowBudget/max(j.rb, 1), (rows+4*threads-1)/(4*threads)), 1)
	}
	if j.gemm != nil {
		j.rowsPerTask = (j.rowsPerTask + gemmRows - 1) / gemmRows * gemmRows
	}
	j.colBlock = n
	switch {
	case j.f16 != nil:
		j.colBlock = min(n, max(colBudget/(4*cols)/3*3, 3))
	case n > 1:
		j.colBlock = min(n, max(colBudget/max(j.xb, 1)&^3, 4))
	}
	j.tasks = (rows + j.rowsPerTask - 1) / j.rowsPerTask
}

// matJob is one MatMul (or its activation conversion) split into tasks.
type matJob struct {
	t          Type
	x          []float32
	data       []byte // the weights
	rb         int    // bytes per weight row
	cols, rows int
	n          int    // activation vectors
	xq         []byte // converted activations, xb bytes each
	xb         int
	out        []float32
	kern       simdKernel

	converting  bool // tasks are activation vectors to convert
	tasks       int
	rowsPerTask int
	colBlock    int // activation vectors per cache block

	// The eight-row kernel, when the batch uses one: nb blocks per row, and
	// for Q8_0 activations each vector's block scales (dy) and, for Q4_0
	// weights, block sums (corr), nb per vector.
	gemm *gemmKernel
	nb   int
	dy   []float32
	corr []int32

	// The decoding kernel, when the product uses one, and each vector's
	// activations in its layout (vb bytes each).
	vec *vecKernel
	yv  []byte
	vb  int

	// The batched F16 kernel, when the product uses it, and the
	// activations as float32 (cols per vector).
	f16 *f16BatchKernel
	yf  []float32

	// Pooled buffers behind xq, yv, dy, corr and yf.
	bp, yvp  *[]byte
	dyp, yfp *[]float32
	corrp    *[]int32
}

// convert converts activation vector v (and prepares it for the eight-row
// kernel).
func (j *matJob) convert(v int) {
	xq := ConvertActivation(j.t, j.x[v*j.cols:(v+1)*j.cols], j.xq[v*j.xb:(v+1)*j.xb])
	if j.vec != nil {
		j.vec.prep(xq, j.nb, j.yv[v*j.vb:(v+1)*j.vb])
		return
	}
	if j.f16 != nil {
		j.f16.widen(j.yf[v*j.cols:(v+1)*j.cols], xq)
		return
	}
	if j.gemm == nil || !j.gemm.dy {
		return
	}
	var corr []int32
	if j.gemm.corr {
		corr = j.corr[v*j.nb : (v+1)*j.nb]
	}
	q8Sums(xq, j.nb, j.dy[v*j.nb:(v+1)*j.nb], corr)
}

// Task computes rows [i·rowsPerTask, (i+1)·rowsPerTask) against every
// activation vector, a cache block of vectors at a time (or, while
// converting, converts vector i).
func (j *matJob) Task(i int) {
	if j.converting {
		j.convert(i)
		return
	}
	lo := i * j.rowsPerTask
	hi := min(lo+j.rowsPerTask, j.rows)
	if j.gemm != nil {
		j.gemmTask(lo, hi)
		return
	}
	cols, rows, xb, rb := j.cols, j.rows, j.xb, j.rb
	if j.vec != nil {
		_ = j.data[hi*rb-1]
		for c := range j.n {
			y := &j.yv[c*j.vb]
			if j.vec.rows != nil && hi > lo {
				_ = j.out[c*rows+hi-1]
				j.vec.rows(&j.data[lo*rb], rb, y, j.nb, &j.out[c*rows+lo], hi-lo)
				continue
			}
			for r := lo; r < hi; r++ {
				j.out[c*rows+r] = j.vec.fn(&j.data[r*rb], y, j.nb)
			}
		}
		return
	}
	dot := j.kern.dot
	if j.n == 1 {
		for r := lo; r < hi; r++ {
			j.out[r] = dot(cols, j.data[r*rb:(r+1)*rb], j.xq)
		}
		return
	}
	for c0 := 0; c0 < j.n; c0 += j.colBlock {
		c1 := min(c0+j.colBlock, j.n)
		if j.f16 != nil {
			// Three activation vectors (in L1) against every row of the
			// task (in L2), then the next three.
			for c := c0; c+3 <= c1; c += 3 {
				for r := lo; r < hi; r++ {
					j.f16.dot3(cols, j.data[r*rb:(r+1)*rb], j.yf[c*cols:], cols, j.out[c*rows+r:], rows)
				}
			}
		}
		for r := lo; r < hi; r++ {
			row := j.data[r*rb : (r+1)*rb]
			c := c0
			if j.f16 != nil {
				c += (c1 - c0) / 3 * 3 // done below
			}
			for ; c < c1; c++ {
				j.out[c*rows+r] = dot(cols, row, j.xq[c*xb:(c+1)*xb])
			}
		}
	}
}
