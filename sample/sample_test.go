package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

var (
	nan    = float32(math.NaN())
	posInf = float32(math.Inf(1))
	negInf = float32(math.Inf(-1))
)

func mustNew(t testing.TB, p Params) *Sampler {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	return s
}

func greedyParams() Params {
	p := DefaultParams()
	p.Temperature = 0
	return p
}

// plainParams samples from the untouched softmax: every filter off.
func plainParams(seed uint64) Params {
	return Params{Temperature: 1, TopP: 1, RepeatPenalty: 1, Seed: seed}
}

func TestValidate(t *testing.T) {
	ok := []Params{
		DefaultParams(),
		greedyParams(),
		plainParams(0),
		{Temperature: 0, TopK: 0, TopP: 1, MinP: 1, RepeatPenalty: 0.5, RepeatLastN: 0},
		{Temperature: 100, TopK: 1 << 30, TopP: 1e-6, MinP: 0, RepeatPenalty: 1e6, RepeatLastN: 1 << 30, Seed: math.MaxUint64},
	}
	for _, p := range ok {
		if _, err := New(p); err != nil {
			t.Errorf("New(%+v) = %v, want no error", p, err)
		}
	}
	bad := []struct {
		name string
		edit func(*Params)
		want string
	}{
		{"negative temperature", func(p *Params) { p.Temperature = -0.1 }, "temperature"},
		{"NaN temperature", func(p *Params) { p.Temperature = nan }, "temperature"},
		{"infinite temperature", func(p *Params) { p.Temperature = posInf }, "temperature"},
		{"negative top-k", func(p *Params) { p.TopK = -1 }, "top-k"},
		{"zero top-p", func(p *Params) { p.TopP = 0 }, "top-p"},
		{"negative top-p", func(p *Params) { p.TopP = -0.5 }, "top-p"},
		{"top-p above 1", func(p *Params) { p.TopP = 1.01 }, "top-p"},
		{"NaN top-p", func(p *Params) { p.TopP = nan }, "top-p"},
		{"negative min-p", func(p *Params) { p.MinP = -0.01 }, "min-p"},
		{"min-p above 1", func(p *Params) { p.MinP = 1.5 }, "min-p"},
		{"zero repeat penalty", func(p *Params) { p.RepeatPenalty = 0 }, "repeat penalty"},
		{"negative repeat penalty", func(p *Params) { p.RepeatPenalty = -1 }, "repeat penalty"},
		{"infinite repeat penalty", func(p *Params) { p.RepeatPenalty = posInf }, "repeat penalty"},
		{"negative repeat-last-n", func(p *Params) { p.RepeatLastN = -1 }, "repeat-last-n"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.edit(&p)
			s, err := New(p)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", p, s)
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("error %q does not wrap ErrInvalidParams", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single", []float32{-3}, 0},
		{"max in middle", []float32{1, 3, 2}, 1},
		{"all negative", []float32{-3, -1, -2}, 1},
		{"tie picks lowest id", []float32{1, 5, 5, 2}, 1},
		{"NaN ignored", []float32{nan, 1, 2, nan}, 2},
		{"-Inf ignored", []float32{negInf, -1e30}, 1},
		{"+Inf wins", []float32{1, posInf, 3}, 1},
		{"+Inf tie picks lowest id", []float32{posInf, 0, posInf}, 0},
		{"all -Inf falls back to 0", []float32{negInf, negInf, negInf}, 0},
		{"all NaN falls back to 0", []float32{nan, nan}, 0},
		{"empty falls back to 0", nil, 0},
	}
	// With the penalty on (but nothing to penalise) the choice goes through
	// the candidate list rather than straight over the logits.
	withPenalty := greedyParams()
	withPenalty.RepeatPenalty = 1.1
	for _, tc := range tests {
		for _, p := range []Params{greedyParams(), withPenalty} {
			t.Run(tc.name, func(t *testing.T) {
				s := mustNew(t, p)
				for range 3 {
					if got := s.Sample(tc.logits); got != tc.want {
						t.Fatalf("Sample(%v) = %d, want %d", tc.logits, got, tc.want)
					}
				}
			})
		}
	}
}

// randomLogits fills a vector with scores spread like a small model's, with
// some exact ties so tie-breaking is exercised.
func randomLogits(r *rand.Rand, n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
		if i > 0 && r.IntN(10) == 0 {
			l[i] = l[r.IntN(i)]
		}
	}
	return l
}

func refArgmax(l []float32) int32 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int32(best)
}

func TestTopK1IsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := DefaultParams()
	p.TopK = 1
	p.Temperature = 1.5
	s := mustNew(t, p)
	g := mustNew(t, greedyParams())
	for i := range 300 {
		l := randomLogits(r, 1+r.IntN(500))
		want := refArgmax(l)
		if got := s.Sample(l); got != want {
			t.Fatalf("draw %d: top-k 1 chose %d, argmax is %d", i, got, want)
		}
		if got := g.Sample(l); got != want {
			t.Fatalf("draw %d: greedy chose %d, argmax is %d", i, got, want)
		}
	}
}

func TestSeededDeterminism(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	inputs := make([][]float32, 300)
	for i := range inputs {
		// Flat-ish scores so every draw has many plausible outcomes.
		inputs[i] = randomLogits(r, 200)
		for j := range inputs[i] {
			inputs[i][j] /= 10
		}
	}
	run := func(s *Sampler) []int32 {
		out := make([]int32, len(inputs))
		for i, l := range inputs {
			out[i] = s.Sample(l)
			s.Accept(out[i])
		}
		return out
	}
	p := DefaultParams()
	p.TopK = 0
	p.RepeatPenalty = 1.3
	p.Seed = 42
	a := mustNew(t, p)
	first := run(a)
	if again := run(mustNew(t, p)); !slices.Equal(first, again) {
		t.Fatalf("same seed, different tokens:\n%v\n%v", first, again)
	}
	a.Reset()
	if again := run(a); !slices.Equal(first, again) {
		t.Fatalf("after Reset, different tokens:\n%v\n%v", first, again)
	}
	p.Seed = 43
	if other := run(mustNew(t, p)); slices.Equal(first, other) {
		t.Fatalf("seeds 42 and 43 gave the same %d tokens", len(first))
	}
}

func logProbs(p []float64) []float32 {
	l := make([]float32, len(p))
	for i, v := range p {
		l[i] = float32(math.Log(v))
	}
	return l
}

// TestDistribution draws many tokens from hand-made distributions and checks
// that each kept token turns up as often as the renormalised distribution
// says and each filtered-out token never does.
func TestDistribution(t *testing.T) {
	tests := []struct {
		name   string
		probs  []float64
		edit   func(*Params)
		accept []int32
		// keep lists the ids expected to survive the filters; their expected
		// frequencies are probs[i]**power, renormalised, where power folds in
		// temperature (1/T) and any penalty worked out by hand below.
		keep  []int
		power float64
		adj   map[int]float64 // multiplies probs[i] (penalty effect)
	}{
		{name: "no filters", probs: []float64{0.5, 0.25, 0.15, 0.1},
			keep: []int{0, 1, 2, 3}},
		{name: "top-k 2", probs: []float64{0.1, 0.4, 0.3, 0.2},
			edit: func(p *Params) { p.TopK = 2 }, keep: []int{1, 2}},
		{name: "top-p 0.85", probs: []float64{0.15, 0.05, 0.5, 0.3},
			edit: func(p *Params) { p.TopP = 0.85 }, keep: []int{0, 2, 3}},
		{name: "top-p below best keeps one", probs: []float64{0.3, 0.5, 0.2},
			edit: func(p *Params) { p.TopP = 0.45 }, keep: []int{1}},
		{name: "min-p 0.12", probs: []float64{0.4, 0.3, 0.2, 0.06, 0.04},
			edit: func(p *Params) { p.MinP = 0.12 }, keep: []int{0, 1, 2, 3}},
		{name: "temperature 2", probs: []float64{0.5, 0.3, 0.2},
			edit: func(p *Params) { p.Temperature = 2 }, keep: []int{0, 1, 2}, power: 0.5},
		{name: "temperature 0.5", probs: []float64{0.5, 0.3, 0.2},
			edit: func(p *Params) { p.Temperature = 0.5 }, keep: []int{0, 1, 2}, power: 2},
		{
			// top-k 3 keeps 1, 3, 4 (0.35, 0.3, 0.2); top-p 0.95 of those keeps
			// all three; min-p 0.6 drops 4 (0.2 < 0.6·0.35).
			name: "chain", probs: []float64{0.05, 0.35, 0.1, 0.3, 0.2},
			edit: func(p *Params) { p.TopK = 3; p.TopP = 0.95; p.MinP = 0.6 },
			keep: []int{1, 3},
		},
		{
			// Temperature comes after min-p: min-p 0.5 drops 2 (0.2 < 0.25)
			// on the untempered distribution, though at T=4 it would pass.
			name: "min-p before temperature", probs: []float64{0.5, 0.3, 0.2},
			edit: func(p *Params) { p.MinP = 0.5; p.Temperature = 4 },
			keep: []int{0, 1}, power: 0.25,
		},
		{
			// log(0.5) < 0 is multiplied by 2: token 0's weight becomes 0.25.
			name: "repeat penalty", probs: []float64{0.5, 0.5},
			edit:   func(p *Params) { p.RepeatPenalty = 2; p.RepeatLastN = 4 },
			accept: []int32{0, 0, 0},
			keep:   []int{0, 1}, adj: map[int]float64{0: 0.5},
		},
	}
	const draws = 20000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := plainParams(7)
			if tc.edit != nil {
				tc.edit(&p)
			}
			s := mustNew(t, p)
			for _, a := range tc.accept {
				s.Accept(a)
			}
			l := logProbs(tc.probs)
			counts := make([]int, len(l))
			for range draws {
				id := s.Sample(l)
				if id < 0 || int(id) >= len(l) {
					t.Fatalf("Sample returned %d, outside [0,%d)", id, len(l))
				}
				counts[id]++
			}
			power := tc.power
			if power == 0 {
				power = 1
			}
			want := make([]float64, len(l))
			total := 0.0
			for _, i := range tc.keep {
				v := tc.probs[i]
				if f, ok := tc.adj[i]; ok {
					v *= f
				}
				want[i] = math.Pow(v, power)
				total += want[i]
			}
			for i := range want {
				want[i] /= total
				got := float64(counts[i]) / draws
				if want[i] == 0 {
					if counts[i] != 0 {
						t.Errorf("token %d was filtered out but drawn %d times", i, counts[i])
					}
					continue
				}
				// Five standard deviations of a binomial proportion.
				bound := 5 * math.Sqrt(want[i]*(1-want[i])/draws)
				if math.Abs(got-want[i]) > bound+1e-9 {
					t.Errorf("token %d: frequency %.4f, want %.4f ± %.4f (counts %v)", i, got, want[i], bound, counts)
				}
			}
		})
	}
}

func TestRepetitionPenalty(t *testing.T) {
	tests := []struct {
		name    string
		logits  []float32
		penalty float32
		lastN   int
		accept  []int32
		want    int32
	}{
		{"no history", []float32{2.0, 1.9}, 1.5, 64, nil, 0},
		{"positive logit divided", []float32{2.0, 1.9}, 1.5, 64, []int32{0}, 1},
		{"once per distinct token", []float32{2.0, 1.7}, 1.1, 64, []int32{0, 0, 0}, 0},
		{"negative logit multiplied", []float32{-1.0, -1.2}, 1.5, 64, []int32{0}, 1},
		{"outside the window", []float32{2.0, 1.9, 0, 0}, 1.5, 2, []int32{0, 2, 3}, 0},
		{"inside the window", []float32{2.0, 1.9, 0, 0}, 1.5, 3, []int32{0, 2, 3}, 1},
		{"ring wraps", []float32{2.0, 1.9, 0, 0}, 1.5, 2, []int32{0, 2, 3, 0}, 1},
		{"penalty below 1 boosts", []float32{1.9, 2.0}, 0.5, 64, []int32{0}, 0},
		{"window 0 is off", []float32{2.0, 1.9}, 1.5, 0, []int32{0}, 0},
		{"penalty 1 is off", []float32{2.0, 1.9}, 1, 64, []int32{0}, 0},
		{"out-of-range history ignored", []float32{2.0, 1.9}, 1.5, 64, []int32{-1, 2, 1 << 30}, 0},
		{"overflow to +Inf clamps", []float32{math.MaxFloat32, 1}, 0.5, 64, []int32{0}, 0},
		{"overflow to -Inf drops", []float32{-math.MaxFloat32, -1e38}, 10, 64, []int32{0}, 1},
		{"everything dropped falls back to 0", []float32{-math.MaxFloat32, negInf}, 10, 64, []int32{0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := greedyParams()
			p.RepeatPenalty = tc.penalty
			p.RepeatLastN = tc.lastN
			s := mustNew(t, p)
			for _, a := range tc.accept {
				s.Accept(a)
			}
			if got := s.Sample(tc.logits); got != tc.want {
				t.Errorf("Sample = %d, want %d", got, tc.want)
			}
		})
	}

	t.Run("reset forgets history", func(t *testing.T) {
		p := greedyParams()
		p.RepeatPenalty = 1.5
		s := mustNew(t, p)
		l := []float32{2.0, 1.9}
		s.Accept(0)
		if got := s.Sample(l); got != 1 {
			t.Fatalf("penalised Sample = %d, want 1", got)
		}
		s.Reset()
		if got := s.Sample(l); got != 0 {
			t.Fatalf("Sample after Reset = %d, want 0", got)
		}
	})

	t.Run("logits not modified", func(t *testing.T) {
		p := DefaultParams()
		p.RepeatPenalty = 1.5
		s := mustNew(t, p)
		s.Accept(0)
		l := []float32{2, nan, posInf, -1}
		orig := slices.Clone(l)
		s.Sample(l)
		for i := range l {
			if math.Float32bits(l[i]) != math.Float32bits(orig[i]) {
				t.Fatalf("Sample changed its input: %v -> %v", orig, l)
			}
		}
	})
}

func TestOddLogitsWhenSampling(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		allow  []int32
	}{
		{"NaN and -Inf never drawn", []float32{nan, negInf, 0, nan, -5}, []int32{2, 4}},
		{"+Inf tokens only", []float32{posInf, 0, posInf, 100}, []int32{0, 2}},
		{"all -Inf", []float32{negInf, negInf}, []int32{0}},
		{"all NaN", []float32{nan, nan, nan}, []int32{0}},
		{"empty", []float32{}, []int32{0}},
		{"huge spread", []float32{-math.MaxFloat32, math.MaxFloat32, 0}, []int32{1}},
	}
	configs := map[string]Params{
		"defaults": DefaultParams(),
		"plain":    plainParams(1),
		"tiny T":   {Temperature: 1e-30, TopP: 1, RepeatPenalty: 1},
		"huge T":   {Temperature: 1e30, TopP: 0.5, MinP: 0.9, RepeatPenalty: 1},
	}
	for cname, p := range configs {
		for _, tc := range tests {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				s := mustNew(t, p)
				for range 200 {
					if got := s.Sample(tc.logits); !slices.Contains(tc.allow, got) {
						t.Fatalf("Sample(%v) = %d, want one of %v", tc.logits, got, tc.allow)
					}
				}
			})
		}
	}
}

// refFilter is a direct, unoptimised transcription of the chain: full sort,
// math.Exp, explicit renormalisation. It returns each surviving id's final
// probability.
func refFilter(p Params, hist []int32, logits []float32) map[int32]float64 {
	type c struct {
		id int32
		l  float64
	}
	l := slices.Clone(logits)
	if p.RepeatPenalty != 1 && p.RepeatLastN > 0 {
		h := hist
		if len(h) > p.RepeatLastN {
			h = h[len(h)-p.RepeatLastN:]
		}
		seen := map[int32]bool{}
		for _, t := range h {
			if t < 0 || int(t) >= len(l) || seen[t] {
				continue
			}
			seen[t] = true
			if l[t] <= 0 {
				l[t] *= p.RepeatPenalty
			} else {
				l[t] /= p.RepeatPenalty
			}
		}
	}
	var cs []c
	for i, v := range l {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), -1) {
			continue
		}
		cs = append(cs, c{int32(i), math.Min(float64(v), math.MaxFloat32)})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].l > cs[j].l })
	if p.TopK > 0 && p.TopK < len(cs) {
		cs = cs[:p.TopK]
	}
	probs := func() []float64 {
		out := make([]float64, len(cs))
		z := 0.0
		for i, x := range cs {
			out[i] = math.Exp(x.l - cs[0].l)
			z += out[i]
		}
		for i := range out {
			out[i] /= z
		}
		return out
	}
	if p.TopP < 1 {
		pr := probs()
		cum := 0.0
		for i := range cs {
			cum += pr[i]
			if cum >= float64(p.TopP) {
				cs = cs[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		pr := probs()
		var kept []c
		for i, x := range cs {
			if pr[i] >= float64(p.MinP)*pr[0] {
				kept = append(kept, x)
			}
		}
		cs = kept
	}
	for i := range cs {
		cs[i].l /= float64(p.Temperature)
	}
	out := map[int32]float64{}
	for i, pr := range probs() {
		out[cs[i].id] = pr
	}
	return out
}

// TestFilterMatchesReference compares the optimised chain (partial selection,
// growing top-p window, own exp) with refFilter on random vocabularies.
func TestFilterMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 1 + r.IntN(3000)
		l := randomLogits(r, n)
		if trial%3 == 0 { // flat scores need big top-p windows
			for i := range l {
				l[i] /= 20
			}
		}
		if trial%7 == 0 {
			l[r.IntN(n)] = nan
			l[r.IntN(n)] = negInf
		}
		p := Params{
			Temperature:   []float32{0.3, 0.8, 1, 1.7}[r.IntN(4)],
			TopK:          []int{0, 1, 5, 40, 2000}[r.IntN(5)],
			TopP:          []float32{1, 0.95, 0.5, 0.99}[r.IntN(4)],
			MinP:          []float32{0, 0.05, 0.2}[r.IntN(3)],
			RepeatPenalty: []float32{1, 1.1, 0.8}[r.IntN(3)],
			RepeatLastN:   []int{0, 3, 64}[r.IntN(3)],
		}
		s := mustNew(t, p)
		var hist []int32
		for range r.IntN(100) {
			tok := int32(r.IntN(n + 2))
			hist = append(hist, tok)
			s.Accept(tok)
		}
		want := refFilter(p, hist, l)
		c, _ := s.filter(l)
		z := 0.0
		for _, x := range c {
			z += x.w
		}
		if len(c) != len(want) {
			t.Fatalf("trial %d (%+v, n=%d): kept %d tokens, reference kept %d", trial, p, n, len(c), len(want))
		}
		for _, x := range c {
			w, ok := want[x.id]
			if !ok {
				t.Fatalf("trial %d: kept token %d the reference dropped", trial, x.id)
			}
			if got := x.w / z; math.Abs(got-w) > 1e-12+1e-9*w {
				t.Fatalf("trial %d: token %d probability %.17g, reference %.17g", trial, x.id, got, w)
			}
		}
	}
}

func TestSelectTop(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for range 200 {
		n := 1 + r.IntN(300)
		c := make([]cand, n)
		for i := range c {
			c[i] = cand{logit: float32(r.IntN(20)), id: int32(i)}
		}
		r.Shuffle(n, func(i, j int) { c[i], c[j] = c[j], c[i] })
		want := slices.Clone(c)
		slices.SortFunc(want, func(a, b cand) int {
			if a.logit != b.logit {
				if a.logit > b.logit {
					return -1
				}
				return 1
			}
			return int(a.id - b.id)
		})
		m := 1 + r.IntN(n)
		selectTop(c, m)
		if !slices.Equal(c[:m], want[:m]) {
			t.Fatalf("selectTop(n=%d, m=%d) = %v, want %v", n, m, c[:m], want[:m])
		}
		rest := slices.Clone(c[m:])
		slices.SortFunc(rest, worse)
		if !slices.Equal(rest, want[m:]) {
			t.Fatalf("selectTop lost or duplicated candidates outside the top %d", m)
		}
	}
}

func TestExpDet(t *testing.T) {
	for _, x := range []float64{0, -1, 1, -0.5, 0.3465, -0.3466, -700, -708.3, 709, -745, 1e-300, -1e-300} {
		got, want := expDet(x), math.Exp(x)
		if got != want && math.Abs(got-want) > 4e-16*want {
			t.Errorf("expDet(%g) = %.17g, math.Exp = %.17g", x, got, want)
		}
	}
	r := rand.New(rand.NewPCG(10, 11))
	for range 100000 {
		x := -r.Float64() * 708
		if r.IntN(2) == 0 {
			x = (r.Float64() - 0.5) * 10
		}
		got, want := expDet(x), math.Exp(x)
		if math.Abs(got-want) > 4e-16*want {
			t.Fatalf("expDet(%.17g) = %.17g, math.Exp = %.17g (rel err %.3g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	if expDet(0) != 1 {
		t.Errorf("expDet(0) = %v, want exactly 1", expDet(0))
	}
	if v := expDet(math.Inf(-1)); v != 0 {
		t.Errorf("expDet(-Inf) = %v, want 0", v)
	}
	if v := expDet(-800); v != 0 {
		t.Errorf("expDet(-800) = %v, want 0", v)
	}
	if v := expDet(710); !math.IsInf(v, 1) {
		t.Errorf("expDet(710) = %v, want +Inf", v)
	}
	if v := expDet(math.NaN()); !math.IsNaN(v) {
		t.Errorf("expDet(NaN) = %v, want NaN", v)
	}
}

func TestSampleDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	l := randomLogits(r, 4096)
	configs := map[string]Params{
		"defaults":                DefaultParams(),
		"greedy":                  greedyParams(),
		"top-p only with penalty": {Temperature: 0.7, TopP: 0.9, MinP: 0.01, RepeatPenalty: 1.2, RepeatLastN: 64},
	}
	for name, p := range configs {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, p)
			for i := range 100 {
				s.Accept(int32(i * 7))
			}
			s.Sample(l) // first call sizes the buffers
			if a := testing.AllocsPerRun(50, func() { s.Accept(s.Sample(l)) }); a != 0 {
				t.Errorf("Sample+Accept allocated %v times per call", a)
			}
		})
	}
}

func BenchmarkSample(b *testing.B) {
	r := rand.New(rand.NewPCG(14, 15))
	l := randomLogits(r, 32000)
	configs := []struct {
		name string
		p    Params
	}{
		{"defaults", DefaultParams()},
		{"greedy", greedyParams()},
		{"top-p 0.95 no top-k", Params{Temperature: 0.8, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64}},
		{"plain", plainParams(0)},
	}
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			s := mustNew(b, c.p)
			b.ReportAllocs()
			for b.Loop() {
				s.Accept(s.Sample(l))
			}
		})
	}
}
