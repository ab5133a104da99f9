package kv

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// patternCache makes a cache of n entries at positions 0..n-1 in every head,
// with keys keyOf(layer, head, position) (zero when nil).
func patternCache(t *testing.T, shape Shape, n int, opts Options, keyOf func(l, h, p int) []float32) *Cache {
	t.Helper()
	c, err := NewCache(shape, 4*n+64, opts)
	if err != nil {
		t.Fatal(err)
	}
	for p := range n {
		appendPos(t, c, p, keyOf)
	}
	return c
}

func appendPos(t *testing.T, c *Cache, p int, keyOf func(l, h, p int) []float32) {
	t.Helper()
	hd := c.HeadDim()
	k := make([]float32, c.KVHeads()*hd)
	v := make([]float32, c.KVHeads()*hd)
	for l := range c.Layers() {
		clear(k)
		for h := range c.KVHeads() {
			if keyOf != nil {
				copy(k[h*hd:], keyOf(l, h, p))
			}
			for i := range hd {
				v[h*hd+i] = float32(p) // a value that names its token
			}
		}
		if err := c.Append(l, int32(p), k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// setScores gives every head's entries the score f(position).
func setScores(c *Cache, f func(p int) float32) {
	for l := range c.Layers() {
		for h := range c.KVHeads() {
			for j, p := range c.Positions(l, h) {
				c.Scores(l, h)[j] = f(int(p))
			}
		}
	}
}

func positions(c *Cache, l, h int) []int {
	var out []int
	for _, p := range c.Positions(l, h) {
		out = append(out, int(p))
	}
	return out
}

func mustPolicy(t *testing.T, spec Spec, shape Shape) Policy {
	t.Helper()
	p, err := NewPolicy(spec, shape)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cacheFor(t *testing.T, p Policy, shape Shape, n int, keyOf func(l, h, p int) []float32) *Cache {
	t.Helper()
	nd := p.Needs()
	return patternCache(t, shape, n, Options{Storage: F32, Scores: nd.Scores, Aux: nd.Aux, GQAMax: nd.GQAMax}, keyOf)
}

var oneHead = Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 4}

func prefill(n int) Event { return Event{Start: 0, End: n, CallStart: 0, CallEnd: n} }
func step(p int) Event    { return Event{Start: p, End: p + 1, CallStart: p, CallEnd: p + 1} }

func TestStreamingKeepsSinksAndRecent(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "streaming", Budget: 8}, oneHead)
	c := cacheFor(t, p, oneHead, 20, nil)
	if err := p.AfterChunk(c, prefill(20)); err != nil {
		t.Fatal(err)
	}
	if got, want := positions(c, 0, 0), []int{0, 1, 2, 3, 16, 17, 18, 19}; !slices.Equal(got, want) {
		t.Fatalf("after prefill kept %v, want %v", got, want)
	}
	appendPos(t, c, 20, nil)
	if err := p.AfterStep(c, step(20)); err != nil {
		t.Fatal(err)
	}
	if got, want := positions(c, 0, 0), []int{0, 1, 2, 3, 17, 18, 19, 20}; !slices.Equal(got, want) {
		t.Fatalf("after a step kept %v, want %v", got, want)
	}
	// The value of each kept entry still names its token.
	v := make([]float32, 4)
	for j, pos := range positions(c, 0, 0) {
		c.Value(0, 0, j, v)
		if v[0] != float32(pos) {
			t.Errorf("entry %d (position %d) has value %v", j, pos, v[0])
		}
	}
}

func TestH2OKeepsHeavyHittersAndRecent(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "h2o", Budget: 6}, oneHead)
	if !p.Needs().Scores {
		t.Fatal("h2o must ask for scores")
	}
	if got := p.Observe(prefill(15)); got != 0 {
		t.Errorf("h2o records from position %d, want every row", got)
	}
	c := cacheFor(t, p, oneHead, 15, nil)
	heavy := map[int]float32{2: 5, 5: 4, 9: 3}
	setScores(c, func(pos int) float32 { return heavy[pos] + 0.01*float32(pos%3) })
	if err := p.AfterPrefill(c, prefill(15)); err != nil {
		t.Fatal(err)
	}
	if got, want := positions(c, 0, 0), []int{2, 5, 9, 12, 13, 14}; !slices.Equal(got, want) {
		t.Fatalf("after prefill kept %v, want %v", got, want)
	}
	// Position 12 leaves the recent window with a light score: it goes, the
	// heavy hitters stay.
	appendPos(t, c, 15, nil)
	if err := p.AfterStep(c, step(15)); err != nil {
		t.Fatal(err)
	}
	if got, want := positions(c, 0, 0), []int{2, 5, 9, 13, 14, 15}; !slices.Equal(got, want) {
		t.Fatalf("after a step kept %v, want %v", got, want)
	}
	// A token that earned more attention than a heavy hitter displaces it.
	sc := c.Scores(0, 0)
	sc[3] = 10 // position 13
	appendPos(t, c, 16, nil)
	if err := p.AfterStep(c, step(16)); err != nil {
		t.Fatal(err)
	}
	if got, want := positions(c, 0, 0), []int{2, 5, 13, 14, 15, 16}; !slices.Equal(got, want) {
		t.Fatalf("after a second step kept %v, want %v", got, want)
	}
}

func TestSnapKVKeepsVotedClusterAndWindow(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "snapkv:window=4,kernel=3,pool=max", Budget: 8}, oneHead)
	if got := p.Observe(prefill(30)); got != 26 {
		t.Errorf("snapkv records from %d, want the last 4 rows (26)", got)
	}
	if got := p.Observe(step(30)); got != math.MaxInt32 {
		t.Errorf("snapkv records decoding rows from %d, want none", got)
	}
	c := cacheFor(t, p, oneHead, 30, nil)
	// One strong vote at 10 and a weaker one at 20; the window votes too.
	setScores(c, func(pos int) float32 {
		switch pos {
		case 10:
			return 3
		case 20:
			return 1
		case 27:
			return 9
		}
		return 0
	})
	if err := p.AfterPrefill(c, prefill(30)); err != nil {
		t.Fatal(err)
	}
	// Max pooling spreads the vote at 10 to 9 and 11; the fourth slot goes to
	// the pooled neighbourhood of 20, later token first; the window stays.
	if got, want := positions(c, 0, 0), []int{9, 10, 11, 21, 26, 27, 28, 29}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if s := c.Scores(0, 0); slices.Max(s) != 0 {
		t.Errorf("votes not cleared after compression: %v", s)
	}
	// Decoding appends without evicting.
	appendPos(t, c, 30, nil)
	if err := p.AfterStep(c, step(30)); err != nil {
		t.Fatal(err)
	}
	if c.Len(0, 0) != 9 {
		t.Errorf("snapkv evicted while decoding: %d entries", c.Len(0, 0))
	}
}

func TestSnapKVLeavesShortPromptAlone(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "snapkv", Budget: 64}, oneHead)
	c := cacheFor(t, p, oneHead, 40, nil)
	if err := p.AfterPrefill(c, prefill(40)); err != nil {
		t.Fatal(err)
	}
	if c.Len(0, 0) != 40 {
		t.Errorf("a 40-token prompt under a budget of 64 lost entries: %d left", c.Len(0, 0))
	}
}

func TestSnapKVDecodeInterval(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "snapkv:window=2,decode=3", Budget: 6}, oneHead)
	if got := p.Observe(step(10)); got != 10 {
		t.Errorf("with decode=3 snapkv records decoding rows from %d, want 10", got)
	}
	c := cacheFor(t, p, oneHead, 10, nil)
	setScores(c, func(pos int) float32 { return float32(pos % 4) })
	if err := p.AfterPrefill(c, prefill(10)); err != nil {
		t.Fatal(err)
	}
	for pos := 10; pos < 13; pos++ {
		if c.Len(0, 0) != 6+pos-10 {
			t.Fatalf("before step %d the cache holds %d", pos, c.Len(0, 0))
		}
		appendPos(t, c, pos, nil)
		if err := p.AfterStep(c, step(pos)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len(0, 0) != 6 {
		t.Errorf("after 3 decoding steps the cache holds %d, want the budget 6", c.Len(0, 0))
	}
}

func TestPyramidKVBudgets(t *testing.T) {
	shape := Shape{Layers: 5, Heads: 2, KVHeads: 1, HeadDim: 4}
	p := mustPolicy(t, Spec{Policy: "pyramidkv:window=4", Budget: 16}, shape)
	c := cacheFor(t, p, shape, 100, nil)
	setScores(c, func(pos int) float32 { return float32(pos % 7) })
	if err := p.AfterPrefill(c, prefill(100)); err != nil {
		t.Fatal(err)
	}
	// B = 12: smallest 12/20 = 0, largest 24, step 6; plus the window.
	want := []int{28, 22, 16, 10, 4}
	for l, w := range want {
		if got := c.Len(l, 0); got != w {
			t.Errorf("layer %d keeps %d, want %d", l, got, w)
		}
	}
	// The window is kept even in the top layer.
	if got := positions(c, 4, 0); !slices.Equal(got, []int{96, 97, 98, 99}) {
		t.Errorf("top layer kept %v, want the window", got)
	}
}

func TestGraphKVDecaysNearDuplicates(t *testing.T) {
	// Entries 0-4 share one key; 5-9 have distinct keys. The duplicates have
	// the best scores, so SnapKV keeps them all; GraphKV keeps the anchor and
	// lets its decayed duplicates give way to distinct tokens.
	keyOf := func(_, _, p int) []float32 {
		if p < 5 {
			return []float32{1, 0, 0, 0}
		}
		k := []float32{0, 0, 0, 0}
		k[1+p%3] = 1
		k[0] = float32(p) / 20
		return k
	}
	score := func(p int) float32 {
		if p < 5 {
			return 1 - 0.01*float32(p)
		}
		return 0.5
	}
	run := func(policy string) []int {
		p := mustPolicy(t, Spec{Policy: policy, Budget: 5}, oneHead)
		c := cacheFor(t, p, oneHead, 10, keyOf)
		setScores(c, score)
		if err := p.AfterPrefill(c, prefill(10)); err != nil {
			t.Fatal(err)
		}
		return positions(c, 0, 0)
	}
	if got, want := run("snapkv:window=0,kernel=1"), []int{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("snapkv kept %v, want the duplicates %v", got, want)
	}
	got := run("graphkv:window=0,kernel=1,anchors=1,neighbours=4")
	if !slices.Contains(got, 0) {
		t.Errorf("graphkv dropped its anchor: %v", got)
	}
	dups := 0
	for _, p := range got {
		if p < 5 {
			dups++
		}
	}
	if dups != 1 || len(got) != 5 {
		t.Errorf("graphkv kept %v: want the anchor and four distinct tokens", got)
	}
}

func TestDecayScoresPaperExample(t *testing.T) {
	// GraphKV's worked example: a token similar to two anchors (0.5 and 0.6)
	// with score 0.7 ends at 0.7 − 0.5·0.7 − 0.6·0.7 = −0.07.
	s := []float32{1.0, 0.9, 0.7}
	keys := []float32{
		1, 0, 0,
		0, 1, 0,
		0.5, 0.6, float32(math.Sqrt(1 - 0.25 - 0.36)),
	}
	DecayScores(s, keys, 3, 2, 1, 1)
	if math.Abs(float64(s[2])+0.07) > 1e-6 {
		t.Errorf("decayed score %v, want -0.07", s[2])
	}
	if !math.IsInf(float64(s[0]), 1) || !math.IsInf(float64(s[1]), 1) {
		t.Errorf("anchors not marked to keep: %v", s[:2])
	}
}

func TestChunkedBoundsMemoryAndFixesScores(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "chunked:recent=0.25,window=8,kernel=1", Budget: 8}, oneHead)
	nd := p.Needs()
	if !nd.Scores || !nd.Aux {
		t.Fatalf("chunked needs scores and per-entry values, got %+v", nd)
	}
	c := cacheFor(t, p, oneHead, 0, nil)
	chunk := 8
	var peak int
	for start := 0; start < 40; start += chunk {
		ev := Event{Start: start, End: start + chunk, CallStart: 0, CallEnd: 40}
		if got := p.Observe(ev); got != start {
			t.Errorf("chunk at %d: records from %d, want the chunk's 8 rows", start, got)
		}
		for pos := start; pos < start+chunk; pos++ {
			appendPos(t, c, pos, nil)
		}
		peak = max(peak, c.Len(0, 0))
		// Votes: tokens at multiples of 5 are important when they arrive;
		// the new chunk's rows also vote heavily for old token 1, which
		// must not matter (scores are fixed on arrival).
		for j, pos := range c.Positions(0, 0) {
			v := float32(0)
			if pos%5 == 0 {
				v = 1
			}
			if pos == 1 {
				v = 100
			}
			if int(pos) < start {
				v = 100 * float32(pos%2)
			}
			c.Scores(0, 0)[j] = v
		}
		if err := p.AfterChunk(c, ev); err != nil {
			t.Fatal(err)
		}
		if c.Len(0, 0) > 8 {
			t.Fatalf("after chunk at %d the cache holds %d > budget", start, c.Len(0, 0))
		}
	}
	if peak > 8+chunk {
		t.Errorf("peak %d entries, want at most budget+chunk = %d", peak, 8+chunk)
	}
	// Kept: token 1 (scored 100 on arrival), the best multiples of 5 (later
	// first on ties), and the two most recent.
	if got, want := positions(c, 0, 0), []int{1, 15, 20, 25, 30, 35, 38, 39}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}

func TestAdaptiveFollowsSurprisal(t *testing.T) {
	p := mustPolicy(t, Spec{Policy: "adaptive:window=0,kernel=1,seg=4,sinks=0", Budget: 6}, oneHead)
	if !p.Needs().Surprisal {
		t.Fatal("adaptive must ask for surprisal")
	}
	c := cacheFor(t, p, oneHead, 16, nil)
	surp := []float32{float32(math.NaN()), 0.1, 0.1, 0.1, 3, 3, 3, 3, 2, 2, 2, 2, 0.1, 0.1, 0.1, 0.1}
	ev := prefill(16)
	ev.Surprisal = surp
	if err := p.AfterChunk(c, ev); err != nil {
		t.Fatal(err)
	}
	// Uniform votes: only the surprisal decides how many each segment keeps.
	setScores(c, func(int) float32 { return 1 })
	if err := p.AfterPrefill(c, ev); err != nil {
		t.Fatal(err)
	}
	per := make([]int, 4)
	for _, pos := range positions(c, 0, 0) {
		per[pos/4]++
	}
	// Shares 0.1:3:2:0.1 of 6 are 0.12, 3.46, 2.31, 0.12: 4 (capped), 2...
	if per[1] < per[2] || per[2] < 2 || per[0] > 1 || per[3] > 1 || c.Len(0, 0) != 6 {
		t.Errorf("tokens kept per segment %v (total %d): want most in the surprising segments 1 and 2", per, c.Len(0, 0))
	}
	p.Reset()

	// With a sink the first token survives its predictable segment.
	p = mustPolicy(t, Spec{Policy: "adaptive:window=0,kernel=1,seg=4,sinks=1", Budget: 6}, oneHead)
	c = cacheFor(t, p, oneHead, 16, nil)
	if err := p.AfterChunk(c, ev); err != nil {
		t.Fatal(err)
	}
	setScores(c, func(int) float32 { return 1 })
	if err := p.AfterPrefill(c, ev); err != nil {
		t.Fatal(err)
	}
	if got := positions(c, 0, 0); got[0] != 0 || len(got) != 6 {
		t.Errorf("with a sink kept %v, want position 0 first and 6 in all", got)
	}
}

func TestPolicyErrors(t *testing.T) {
	shape := oneHead
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Policy: "nosuch"}, `unknown policy "nosuch"`},
		{Spec{Policy: "snapkv"}, "needs a budget"},
		{Spec{Policy: "snapkv:windw=4", Budget: 8}, "unknown parameter(s) windw"},
		{Spec{Policy: "snapkv:window=x", Budget: 8}, "not a non-negative integer"},
		{Spec{Policy: "snapkv:kernel=4", Budget: 8}, "must be odd"},
		{Spec{Policy: "snapkv:pool=min", Budget: 8}, "want one of"},
		{Spec{Policy: "h2o:recent=2", Budget: 8}, "fraction"},
		{Spec{Policy: "graphkv:anchors=0", Budget: 8}, "at least 1"},
		{Spec{Policy: "snapkv", Budget: 8, Table: &Table{Kind: TableLayers, Layers: []int{1, 2}}}, "2 layers, the model 1"},
		{Spec{Policy: "pyramidkv", Budget: 8, Table: &Table{Kind: TableLayers, Layers: []int{1}}}, "sets its own pyramid"},
		{Spec{Policy: "full", Quant: Quant{Bits: 3}}, "3-bit"},
	} {
		_, _, err := Build(tc.spec, shape, 16, F16)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.spec, err, tc.want)
		}
	}
}

func TestFullIsNoPolicy(t *testing.T) {
	c, p, err := Build(Spec{Policy: "full", Budget: 8}, oneHead, 16, F16)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		t.Errorf("full gave policy %v, want none", p.Name())
	}
	if c.Scores(0, 0) != nil {
		t.Error("full keeps scores")
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		err  string
	}{
		{in: "h2o@64", want: Spec{Policy: "h2o", Budget: 64}},
		{in: "snapkv:window=16,kernel=5@128+q4", want: Spec{Policy: "snapkv:window=16,kernel=5", Budget: 128, Quant: Quant{Bits: 4, Residual: 32}}},
		{in: "full+q2+h", want: Spec{Policy: "full", Quant: Quant{Bits: 2, Residual: 32, Hadamard: true}}},
		{in: "h2o@x", err: "not a positive integer"},
		{in: "h2o@64+z", err: "unknown modifier"},
		{in: "full+h", err: "needs +qBITS"},
	} {
		got, err := ParseSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Policy != tc.want.Policy || got.Budget != tc.want.Budget || got.Quant != tc.want.Quant {
			t.Errorf("%s: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// rope2 is a RoPE for head size 4: pairs (0,1) and (2,3) turn by 1 and 0.1
// radians per position.
func rope2(v []float32, delta int) {
	for i, theta := range []float64{1, 0.1} {
		a := float64(delta) * theta
		c, s := math.Cos(a), math.Sin(a)
		x0, x1 := float64(v[2*i]), float64(v[2*i+1])
		v[2*i], v[2*i+1] = float32(x0*c-x1*s), float32(x0*s+x1*c)
	}
}

// TestStreamingRerotateIsCacheRelative: with rerotate=1, attention over the
// cache equals StreamingLLM's, where keys and the query are rotated at their
// positions in the cache, not in the text.
func TestStreamingRerotateIsCacheRelative(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 4}
	c, p, err := BuildWith(Spec{Policy: "streaming:sinks=2,rerotate=1", Budget: 8}, shape, 64, F32, rope2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 9))
	n := 30
	raw := make([][]float32, n)
	for pos := range n {
		raw[pos] = randVec(rng, 4)
		k := slices.Clone(raw[pos])
		rope2(k, pos) // stored after RoPE at the text position, as the forward pass does
		v := []float32{float32(pos), 0, 0, 0}
		if err := c.Append(0, int32(pos), k, v); err != nil {
			t.Fatal(err)
		}
		if err := p.AfterStep(c, step(pos)); err != nil {
			t.Fatal(err)
		}
	}
	kept := positions(c, 0, 0)
	if want := []int{0, 1, 24, 25, 26, 27, 28, 29}; !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	q := randVec(rng, 4)
	qText := slices.Clone(q)
	rope2(qText, n-1) // the forward pass rotates the query at its text position
	out := make([]float32, 4)
	c.Attend(0, int32(n-1), 1, qText, out, math.MaxInt32)

	// StreamingLLM: query and keys rotated at their cache positions.
	qCache := slices.Clone(q)
	rope2(qCache, len(kept)-1)
	var want, sum float64
	scores := make([]float64, len(kept))
	for j, pos := range kept {
		k := slices.Clone(raw[pos])
		rope2(k, j)
		var d float64
		for i := range k {
			d += float64(qCache[i]) * float64(k[i])
		}
		scores[j] = math.Exp(d / 2)
		sum += scores[j]
	}
	for j, pos := range kept {
		want += scores[j] / sum * float64(pos)
	}
	if math.Abs(float64(out[0])-want) > 1e-4 {
		t.Errorf("attention output %v, StreamingLLM's %v", out[0], want)
	}

	// Without rerotate the sinks keep their text positions, and the result differs.
	c2, p2, _ := BuildWith(Spec{Policy: "streaming:sinks=2", Budget: 8}, shape, 64, F32, rope2)
	for pos := range n {
		k := slices.Clone(raw[pos])
		rope2(k, pos)
		if err := c2.Append(0, int32(pos), k, []float32{float32(pos), 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		if err := p2.AfterStep(c2, step(pos)); err != nil {
			t.Fatal(err)
		}
	}
	c2.Attend(0, int32(n-1), 1, qText, out, math.MaxInt32)
	if math.Abs(float64(out[0])-want) < 1e-4 {
		t.Errorf("without rerotate the output %v already equals StreamingLLM's; the test proves nothing", out[0])
	}
}

func TestStreamingRerotateNeedsPlainCache(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 8}
	for _, tc := range []struct {
		rot   Rotator
		quant Quant
		want  string
	}{
		{nil, Quant{}, "needs the model's RoPE"},
		{func([]float32, int) {}, Quant{Bits: 8, Group: 4}, "unquantized"},
	} {
		c, p, err := BuildWith(Spec{Policy: "streaming:rerotate=1", Budget: 4, Quant: tc.quant}, shape, 64, F32, tc.rot)
		if err != nil {
			t.Fatal(err)
		}
		for pos := range 6 {
			appendPos(t, c, pos, nil)
		}
		if err := p.AfterStep(c, step(5)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
