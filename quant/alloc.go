package quant

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
)

// Plan gives each quantizable unit its type: the output of Allocate and an
// input of Quantize (Options.Plan). A unit is a dense weight tensor, keyed
// by its name, or one expert of an MoE layer (its gate, up and down
// matrices together), keyed by ExpertKey.
type Plan struct {
	Target  string
	Types   map[string]tensor.Type
	Damage  map[string]float64 // measured damage of each unit at its type
	Notes   map[string]string  // why a unit had no choice
	Summary *AllocationSummary
}

// ExpertKey names the allocation unit of expert e in layer l.
func ExpertKey(layer, e int) string { return fmt.Sprintf("blk.%d.expert.%d", layer, e) }

// AllocOptions configure Allocate.
type AllocOptions struct {
	// Candidates are the types a unit may take (those whose blocks fit it).
	// Nil means DefaultCandidates.
	Candidates []tensor.Type
	// Budget is the most bytes of tensor data the whole output may hold
	// (every tensor, quantized or not).
	Budget int64
	// ChoiceBPW, if positive, sets the budget instead: the fixed tensors
	// (those with no choice: norms, the router, tensors no candidate fits)
	// as they are, plus ChoiceBPW bits for every weight of the tensors that
	// have a choice.
	ChoiceBPW float64
	// Calibration is the token stream damage is measured on; it is cut into
	// Chunks chunks of Ctx tokens (at most; fewer if it is shorter).
	Calibration []int32
	Ctx, Chunks int
	// Imatrix, if set, is used when quantizing units for measurement, as
	// Quantize will use it.
	Imatrix *Imatrix
	// MinExpertCount[t] = n requires at least n experts of every MoE layer
	// at type t (MC-MoE's constraint; t must be a candidate).
	MinExpertCount map[tensor.Type]int
	// Alpha and Beta are MC-MoE's exponents on an expert's activation
	// frequency and routing weight (defaults 1 and 1.5, as in its code).
	Alpha, Beta float64
	// Workers run measurements in parallel (default GOMAXPROCS).
	Workers int
	// Progress, if set, is called after each measurement.
	Progress func(done, total int, what string)
}

// DefaultCandidates are the types Allocate chooses from by default: every
// type tamp writes except BF16 and F32.
func DefaultCandidates() []tensor.Type {
	c := []tensor.Type{tensor.Q2_K, tensor.Q3_K, tensor.Q4_0, tensor.Q4_1, tensor.Q4_K, tensor.Q5_0, tensor.Q5_1,
		tensor.Q5_K, tensor.Q6_K, tensor.Q8_0}
	c = append(c, SQTypes()...)
	return append(c, tensor.F16)
}

// AllocationSummary reports what Allocate decided and why.
type AllocationSummary struct {
	Budget        int64              `json:"budget_bytes"`
	Used          int64              `json:"used_bytes"`
	Fixed         int64              `json:"fixed_bytes"`    // tensors with no choice
	ChoiceWeights int64              `json:"choice_weights"` // weights of the tensors with a choice
	Minimum       int64              `json:"minimum_bytes"`  // the smallest feasible total
	Weights       int64              `json:"weights"`
	Cost          float64            `json:"total_damage"` // Σ of the chosen units' (weighted) damage
	Granularity   int64              `json:"granularity_bytes"`
	Exact         bool               `json:"exact"` // sizes were not rounded for the solver
	Measured      int                `json:"measurements"`
	Units         []UnitReport       `json:"units"`
	Experts       []ExpertLayerStats `json:"experts,omitempty"`
}

// UnitReport is one unit's options and choice.
type UnitReport struct {
	Unit    string         `json:"unit"`
	Type    string         `json:"type"`
	Bytes   int64          `json:"bytes"`
	Damage  float64        `json:"damage"`
	Weight  float64        `json:"weight"` // MC-MoE factor on an expert's damage (1 for dense units)
	Options []OptionReport `json:"options"`
}

// OptionReport is one measured option of a unit.
type OptionReport struct {
	Type   string  `json:"type"`
	Bytes  int64   `json:"bytes"`
	Damage float64 `json:"damage"`
}

// ExpertLayerStats are one MoE layer's routing statistics on the
// calibration text.
type ExpertLayerStats struct {
	Layer     int       `json:"layer"`
	Frequency []float64 `json:"frequency"`      // φ_i: share of routing decisions picking expert i
	Weight    []float64 `json:"routing_weight"` // w_i: share of the routing weight expert i received
}

// unit is a set of matrices that take one type together.
type unit struct {
	key     string
	tensors []*gguf.Tensor
	expert  int // -1 for dense units
	layer   int
	rows    []int // rows each tensor contributes (one expert's slice for experts)
	mats    []int // the expert's matrix in each tensor if stacked, else -1
	opts    []unitOption
	weight  float64
}

type unitOption struct {
	t      tensor.Type
	bytes  int64
	damage float64
}

func (u *unit) fits(t tensor.Type) bool {
	for _, tt := range u.tensors {
		if int(tt.Dims[0])%blockSize(t) != 0 {
			return false
		}
	}
	return true
}

func (u *unit) size(t tensor.Type) int64 {
	var n int64
	for i, tt := range u.tensors {
		rb, _ := tensor.RowBytes(t, int(tt.Dims[0]))
		n += int64(rb) * int64(u.rows[i])
	}
	return n
}

// Allocate chooses a type for every quantizable unit of f to minimise the
// total measured damage within opts.Budget bytes of tensor data.
//
// Damage of (unit, type) is measured, not modelled: the mean KL divergence
// from f's next-token distributions, over every position of the calibration
// chunks, of f with only that unit quantized to that type. For MoE layers,
// each expert's damage is multiplied by MC-MoE's significance factor
// φ_i^α·w_i^β (activation frequency and routing weight on the calibration
// text, normalised within the layer), divided by the factor's mean over the
// layer so expert and dense costs stay on one scale. Total damage is taken
// as the sum over units.
//
// The choice is solved exactly: a multiple-choice knapsack by dynamic
// programming over sizes in units of the greatest common divisor of all
// option sizes. Each MoE layer first becomes one choice group whose options
// are the best per-expert assignments at each total size that meet the
// MinExpertCount constraints (every expert gets exactly one type). If the
// size grid would be too large, sizes are rounded up to a coarser grid, which
// keeps the budget respected but optimal only on that grid; the summary says
// so (Exact false).
func Allocate(ctx context.Context, f *gguf.File, opts AllocOptions) (*Plan, error) {
	if opts.Ctx <= 0 {
		return nil, fmt.Errorf("quant: allocation needs a calibration context length")
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 1
	}
	opts.Chunks = min(opts.Chunks, len(opts.Calibration)/opts.Ctx)
	if opts.Chunks == 0 {
		return nil, fmt.Errorf("quant: the calibration text has %d tokens, fewer than one chunk of %d", len(opts.Calibration), opts.Ctx)
	}
	if opts.Candidates == nil {
		opts.Candidates = DefaultCandidates()
	}
	if opts.Alpha == 0 && opts.Beta == 0 {
		opts.Alpha, opts.Beta = 1, 1.5
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Imatrix != nil {
		if err := opts.Imatrix.Bind(f); err != nil {
			return nil, err
		}
	}
	for t := range opts.MinExpertCount {
		found := false
		for _, c := range opts.Candidates {
			found = found || c == t
		}
		if !found {
			return nil, fmt.Errorf("quant: minimum expert count for %s, which is not a candidate", t)
		}
	}
	base, err := model.Load(f)
	if err != nil {
		return nil, err
	}
	chunks := make([][]int32, opts.Chunks)
	for i := range chunks {
		chunks[i] = opts.Calibration[i*opts.Ctx : (i+1)*opts.Ctx]
	}
	stats := &ExpertStats{}
	baseLP, err := logProbs(base, chunks, stats)
	if err != nil {
		return nil, err
	}

	// Units and fixed costs.
	sum := &AllocationSummary{Budget: opts.Budget}
	var units []*unit
	expertUnits := map[[2]int]*unit{}
	types := map[string]tensor.Type{}
	notes := map[string]string{}
	for _, t := range f.Tensors {
		tt := t.Tensor()
		sum.Weights += int64(tt.Elements())
		if !Quantizable(t) {
			sum.Fixed += int64(len(t.Data))
			continue
		}
		addExpert := func(l, e, mat, rows int) {
			u := expertUnits[[2]int{l, e}]
			if u == nil {
				u = &unit{key: ExpertKey(l, e), expert: e, layer: l, weight: 1}
				expertUnits[[2]int{l, e}] = u
				units = append(units, u)
			}
			u.tensors = append(u.tensors, t)
			u.rows = append(u.rows, rows)
			u.mats = append(u.mats, mat)
		}
		if isExperts(t) {
			l := layerOf(t.Name)
			for e := 0; e < int(t.Dims[2]); e++ {
				addExpert(l, e, e, int(t.Dims[1]))
			}
			continue
		}
		if l, e, ok := perExpert(t); ok {
			addExpert(l, e, -1, tt.Rows())
			continue
		}
		units = append(units, &unit{key: t.Name, tensors: []*gguf.Tensor{t}, rows: []int{tt.Rows()}, mats: []int{-1}, expert: -1, layer: layerOf(t.Name), weight: 1})
	}
	var measure []*unit
	var jobs []job
	for _, u := range units {
		var fit []tensor.Type
		for _, c := range opts.Candidates {
			if u.fits(c) {
				fit = append(fit, c)
			}
		}
		if len(fit) == 0 {
			fit = []tensor.Type{tensor.F16} // F16 fits every row
			notes[u.key] = fmt.Sprintf("fallback: no candidate's blocks divide rows of %d; using F16", u.tensors[0].Dims[0])
		}
		if len(fit) == 1 {
			types[u.key] = fit[0]
			sum.Fixed += u.size(fit[0])
			continue
		}
		for i, tt := range u.tensors {
			sum.ChoiceWeights += int64(tt.Dims[0]) * int64(u.rows[i])
		}
		for _, c := range fit {
			u.opts = append(u.opts, unitOption{t: c, bytes: u.size(c)})
			jobs = append(jobs, job{u: u, opt: len(u.opts) - 1})
		}
		measure = append(measure, u)
	}

	if opts.ChoiceBPW > 0 {
		opts.Budget = sum.Fixed + int64(opts.ChoiceBPW*float64(sum.ChoiceWeights)/8)
		sum.Budget = opts.Budget
	}

	// Feasibility needs only sizes: refuse an impossible budget before
	// measuring anything. (MinExpertCount can only raise the minimum; the
	// expert groups check it again below.)
	minimum := sum.Fixed
	for _, u := range measure {
		m := u.opts[0].bytes
		for _, o := range u.opts {
			m = min(m, o.bytes)
		}
		minimum += m
	}
	sum.Minimum = minimum
	if opts.Budget < minimum {
		return nil, fmt.Errorf("quant: the budget of %d bytes (%.4f bits per weight; %.4f over the %d weights with a choice) is below the smallest size these candidates reach, %d bytes (%.4f; %.4f)",
			opts.Budget, 8*float64(opts.Budget)/float64(sum.Weights), 8*float64(opts.Budget-sum.Fixed)/float64(max(sum.ChoiceWeights, 1)), sum.ChoiceWeights,
			minimum, 8*float64(minimum)/float64(sum.Weights), 8*float64(minimum-sum.Fixed)/float64(max(sum.ChoiceWeights, 1)))
	}

	// Measure.
	if err := runJobs(ctx, f, chunks, baseLP, jobs, opts); err != nil {
		return nil, err
	}
	sum.Measured = len(jobs)

	// MC-MoE weighting of expert damage.
	for _, ls := range stats.layers() {
		factors := make([]float64, len(ls.Frequency))
		var mean float64
		for i := range factors {
			factors[i] = math.Pow(ls.Frequency[i], opts.Alpha) * math.Pow(ls.Weight[i], opts.Beta)
			mean += factors[i] / float64(len(factors))
		}
		for i, fct := range factors {
			if u := expertUnits[[2]int{ls.Layer, i}]; u != nil && mean > 0 {
				u.weight = fct / mean
			}
		}
		sum.Experts = append(sum.Experts, ls)
	}

	// Choice groups: dense units alone, each MoE layer's experts together.
	var groups []*group
	moe := map[int][]*unit{}
	for _, u := range measure {
		if u.expert >= 0 {
			moe[u.layer] = append(moe[u.layer], u)
			continue
		}
		g := &group{units: []*unit{u}}
		for i, o := range u.opts {
			g.opts = append(g.opts, groupOption{bytes: o.bytes, cost: o.damage * u.weight, pick: []int{i}})
		}
		groups = append(groups, g)
	}
	layers := make([]int, 0, len(moe))
	for l := range moe {
		layers = append(layers, l)
	}
	sort.Ints(layers)
	for _, l := range layers {
		g, err := expertGroup(moe[l], opts.MinExpertCount)
		if err != nil {
			return nil, fmt.Errorf("quant: layer %d: %w", l, err)
		}
		groups = append(groups, g)
	}

	// Solve.
	minimum = sum.Fixed
	for _, g := range groups {
		m := g.opts[0].bytes
		for _, o := range g.opts {
			m = min(m, o.bytes)
		}
		minimum += m
	}
	sum.Minimum = minimum
	if opts.Budget < minimum {
		return nil, fmt.Errorf("quant: the budget of %d bytes is below the smallest size that meets the minimum expert counts, %d bytes", opts.Budget, minimum)
	}
	picks, gran, exact, cost := solveKnapsack(groups, opts.Budget-sum.Fixed)
	sum.Granularity, sum.Exact, sum.Cost = gran, exact, cost
	plan := &Plan{Types: types, Damage: map[string]float64{}, Notes: notes, Summary: sum}
	sum.Used = sum.Fixed
	for gi, g := range groups {
		o := g.opts[picks[gi]]
		sum.Used += o.bytes
		for ui, u := range g.units {
			uo := u.opts[o.pick[ui]]
			plan.Types[u.key] = uo.t
			plan.Damage[u.key] = uo.damage
			ur := UnitReport{Unit: u.key, Type: uo.t.String(), Bytes: uo.bytes, Damage: uo.damage, Weight: u.weight}
			for _, x := range u.opts {
				ur.Options = append(ur.Options, OptionReport{Type: x.t.String(), Bytes: x.bytes, Damage: x.damage})
			}
			sum.Units = append(sum.Units, ur)
		}
	}
	sort.Slice(sum.Units, func(i, j int) bool { return sum.Units[i].Unit < sum.Units[j].Unit })
	return plan, nil
}

// job is one measurement: unit u at its option opt.
type job struct {
	u   *unit
	opt int
}

// runJobs measures every job's damage, opts.Workers at a time.
func runJobs(ctx context.Context, f *gguf.File, chunks [][]int32, baseLP [][]float64, jobs []job, opts AllocOptions) error {
	var mu sync.Mutex
	var firstErr error
	done := 0
	next := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				d, err := measureDamage(f, j.u, j.u.opts[j.opt].t, chunks, baseLP, opts.Imatrix)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				j.u.opts[j.opt].damage = d
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(jobs), j.u.key+" "+j.u.opts[j.opt].t.String())
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// measureDamage builds f with only unit u quantized to t and returns the
// mean KL divergence of its next-token distributions from the base's. Every
// matrix of the unit is stored in type t itself, so the measurement includes
// exactly what inference will do: an expert of a stacked tensor is measured
// with that tensor split into per-expert tensors (the others keep their
// bytes), as Quantize writes experts of different types.
func measureDamage(f *gguf.File, u *unit, t tensor.Type, chunks [][]int32, baseLP [][]float64, im *Imatrix) (float64, error) {
	mf := &gguf.File{Version: 3, Alignment: f.Alignment, KV: f.KV}
	for _, gt := range f.Tensors {
		i := -1
		for k, ut := range u.tensors {
			if ut == gt {
				i = k
			}
		}
		if i < 0 {
			mf.Tensors = append(mf.Tensors, gt)
			continue
		}
		mat := u.mats[i]
		if mat < 0 {
			data, err := quantizeMatrix(gt, gt.Data, gt.Name, 0, t, im)
			if err != nil {
				return 0, err
			}
			mf.Tensors = append(mf.Tensors, &gguf.Tensor{Name: gt.Name, Dims: gt.Dims, Type: t, Data: data})
			continue
		}
		experts := int(gt.Dims[2])
		size := len(gt.Data) / experts
		for e := range experts {
			name, _ := SplitExpertName(gt.Name, e)
			nt := &gguf.Tensor{Name: name, Dims: gt.Dims[:2], Type: gt.Type, Data: gt.Data[e*size : (e+1)*size]}
			if e == mat {
				data, err := quantizeMatrix(gt, nt.Data, gt.Name, e, t, im)
				if err != nil {
					return 0, err
				}
				nt.Type, nt.Data = t, data
			}
			mf.Tensors = append(mf.Tensors, nt)
		}
	}
	m, err := model.Load(mf)
	if err != nil {
		return 0, err
	}
	lp, err := logProbs(m, chunks, nil)
	if err != nil {
		return 0, err
	}
	return meanKL(baseLP, lp, m.Vocab), nil
}

// quantizeMatrix stores data, matrix mat of tensor gt in gt's type, as type
// t with the importance of imatrix entry name.
func quantizeMatrix(gt *gguf.Tensor, data []byte, name string, mat int, t tensor.Type, im *Imatrix) ([]byte, error) {
	cols := int(gt.Dims[0])
	src := make([]float32, len(data)/rowBytes(gt.Type, cols)*cols)
	if err := tensor.Dequantize(gt.Type, data, src); err != nil {
		return nil, err
	}
	qw, err := im.weightsFor(name, mat, cols)
	if err != nil {
		return nil, err
	}
	return quantizeRows(t, src, cols, qw)
}

func rowBytes(t tensor.Type, cols int) int {
	n, _ := tensor.RowBytes(t, cols)
	return max(n, 1)
}

// logProbs evaluates each chunk from an empty context and returns the
// log-probabilities of every position (vocabulary-major per chunk).
func logProbs(m *model.Model, chunks [][]int32, obs model.Observer) ([][]float64, error) {
	ctx := len(chunks[0])
	sess, err := m.NewSession(model.SessionOptions{Context: ctx, Observer: obs})
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(chunks))
	for c, toks := range chunks {
		sess.Reset()
		logits, err := sess.Forward(toks, true)
		if err != nil {
			return nil, err
		}
		lp := make([]float64, len(logits))
		v := m.Vocab
		for p := 0; p < len(toks); p++ {
			row := logits[p*v : (p+1)*v]
			mx := math.Inf(-1)
			for _, x := range row {
				mx = math.Max(mx, float64(x))
			}
			var s float64
			for _, x := range row {
				s += math.Exp(float64(x) - mx)
			}
			lse := mx + math.Log(s)
			for i, x := range row {
				lp[p*v+i] = float64(x) - lse
			}
		}
		out[c] = lp
	}
	return out, nil
}

// meanKL is the mean over positions of KL(p‖q), with both given as
// log-probabilities laid out as logProbs returns them (vocab per position).
func meanKL(p, q [][]float64, vocab int) float64 {
	var total float64
	var n int
	for c := range p {
		pc, qc := p[c], q[c]
		for pos := 0; pos+vocab <= len(pc); pos += vocab {
			var kl float64
			for i := pos; i < pos+vocab; i++ {
				kl += math.Exp(pc[i]) * (pc[i] - qc[i])
			}
			total += kl
			n++
		}
	}
	return total / float64(max(n, 1))
}

// ExpertStats collects MC-MoE's per-expert routing statistics: how often
// each expert is chosen and how much routing weight it receives. Use it as
// (or inside) a model.Observer.
type ExpertStats struct {
	mu     sync.Mutex
	counts map[int][]float64
	wsum   map[int][]float64
}

// MatMulInput does nothing.
func (s *ExpertStats) MatMulInput(*tensor.Tensor, int, []float32, int) {}

// Routed counts one token's routing decision.
func (s *ExpertStats) Routed(layer int, experts []int, weights []float32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts, s.wsum = map[int][]float64{}, map[int][]float64{}
	}
	for i, e := range experts {
		for len(s.counts[layer]) <= e {
			s.counts[layer] = append(s.counts[layer], 0)
			s.wsum[layer] = append(s.wsum[layer], 0)
		}
		s.counts[layer][e]++
		s.wsum[layer][e] += float64(weights[i])
	}
}

// layers returns each layer's statistics normalised within the layer.
func (s *ExpertStats) layers() []ExpertLayerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ExpertLayerStats
	for l, c := range s.counts {
		ls := ExpertLayerStats{Layer: l, Frequency: norm(c), Weight: norm(s.wsum[l])}
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Layer < out[j].Layer })
	return out
}

func norm(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	out := make([]float64, len(v))
	for i, x := range v {
		if s > 0 {
			out[i] = x / s
		}
	}
	return out
}

// group is a set of units chosen together; each option fixes all of them.
type group struct {
	units []*unit
	opts  []groupOption
}

type groupOption struct {
	bytes int64
	cost  float64
	pick  []int // option index per unit
}

// expertGroup turns one MoE layer's experts into a choice group: for every
// reachable total size, the cheapest assignment of one type per expert that
// meets the minimum counts. It is exact (a DP over experts whose state is
// the size and the counts of the constrained types, capped at their
// minimum).
func expertGroup(us []*unit, minCount map[tensor.Type]int) (*group, error) {
	sort.Slice(us, func(i, j int) bool { return us[i].expert < us[j].expert })
	var cons []tensor.Type
	for t, n := range minCount {
		if n > 0 {
			cons = append(cons, t)
		}
	}
	sort.Slice(cons, func(i, j int) bool { return cons[i] < cons[j] })
	need := 0
	for _, t := range cons {
		need += minCount[t]
	}
	if need > len(us) {
		return nil, fmt.Errorf("the minimum expert counts ask for %d experts; the layer has %d", need, len(us))
	}
	type state struct {
		bytes  int64
		counts string
		cost   float64
		pick   []int
	}
	key := func(b int64, counts []int) string { return fmt.Sprint(b, counts) }
	cur := map[string]*state{key(0, make([]int, len(cons))): {counts: fmt.Sprint(make([]int, len(cons)))}}
	curCounts := map[string][]int{key(0, make([]int, len(cons))): make([]int, len(cons))}
	for _, u := range us {
		nxt := map[string]*state{}
		nxtCounts := map[string][]int{}
		for k, s := range cur {
			for oi, o := range u.opts {
				c := append([]int(nil), curCounts[k]...)
				for ci, t := range cons {
					if o.t == t && c[ci] < minCount[t] {
						c[ci]++
					}
				}
				nk := key(s.bytes+o.bytes, c)
				cost := s.cost + o.damage*u.weight
				if old, ok := nxt[nk]; !ok || cost < old.cost {
					nxt[nk] = &state{bytes: s.bytes + o.bytes, cost: cost, pick: append(append([]int(nil), s.pick...), oi)}
					nxtCounts[nk] = c
				}
			}
		}
		cur, curCounts = nxt, nxtCounts
	}
	best := map[int64]*state{}
	for k, s := range cur {
		ok := true
		for ci, t := range cons {
			ok = ok && curCounts[k][ci] >= minCount[t]
		}
		if !ok {
			continue
		}
		if b, seen := best[s.bytes]; !seen || s.cost < b.cost {
			best[s.bytes] = s
		}
	}
	if len(best) == 0 {
		return nil, fmt.Errorf("no assignment of the candidates meets the minimum expert counts")
	}
	g := &group{units: us}
	for _, s := range best {
		g.opts = append(g.opts, groupOption{bytes: s.bytes, cost: s.cost, pick: s.pick})
	}
	sort.Slice(g.opts, func(i, j int) bool { return g.opts[i].bytes < g.opts[j].bytes })
	return g, nil
}

// maxCells bounds the solver's table (groups × size steps).
const maxCells = 32 << 20

// solveKnapsack picks one option per group to minimise the total cost with
// total bytes at most budget. It returns the picks, the size step used, and
// whether the step divided every size (exact).
func solveKnapsack(groups []*group, budget int64) (picks []int, gran int64, exact bool, cost float64) {
	if len(groups) == 0 {
		return nil, 1, true, 0
	}
	// A budget above the largest total changes nothing; capping it keeps the
	// table small.
	var most int64
	for _, g := range groups {
		m := int64(0)
		for _, o := range g.opts {
			m = max(m, o.bytes)
		}
		most += m
	}
	budget = min(budget, most)
	gran = 0
	for _, g := range groups {
		for _, o := range g.opts {
			gran = gcd(gran, o.bytes)
		}
	}
	if gran == 0 {
		gran = 1
	}
	exact = true
	for (budget/gran+1)*int64(len(groups)) > maxCells {
		gran *= 2
		exact = false
	}
	steps := func(b int64) int64 { return (b + gran - 1) / gran } // round up: never over budget
	B := budget / gran
	inf := math.Inf(1)
	dp := make([]float64, B+1)
	for i := range dp {
		dp[i] = inf
	}
	dp[0] = 0
	choice := make([][]uint16, len(groups))
	for gi, g := range groups {
		nd := make([]float64, B+1)
		for i := range nd {
			nd[i] = inf
		}
		ch := make([]uint16, B+1)
		for oi, o := range g.opts {
			s := steps(o.bytes)
			for b := s; b <= B; b++ {
				if v := dp[b-s] + o.cost; v < nd[b] {
					nd[b], ch[b] = v, uint16(oi)
				}
			}
		}
		dp, choice[gi] = nd, ch
	}
	bestB := int64(0)
	cost = inf
	for b := int64(0); b <= B; b++ {
		if dp[b] < cost {
			cost, bestB = dp[b], b
		}
	}
	// Walk back. Every dp state keeps the option that reached it; to
	// recover them the tables of earlier groups are needed, so the solver
	// records per-group choices and re-derives the previous size.
	picks = make([]int, len(groups))
	b := bestB
	for gi := len(groups) - 1; gi >= 0; gi-- {
		oi := int(choice[gi][b])
		picks[gi] = oi
		b -= steps(groups[gi].opts[oi].bytes)
	}
	return picks, gran, exact, cost
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
