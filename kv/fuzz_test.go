package kv

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzShapes are model shapes a fuzzed table or spec is checked against.
var fuzzShapes = []Shape{
	{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 4},
	{Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 8},
	{Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8}, // stories260K
}

// FuzzReadTable feeds arbitrary bytes to ReadTable (what --kv-table reads).
// Nothing may panic; a table it accepts must write back to JSON that reads
// the same; and for any model it fits, resolving it gives every head a
// non-negative budget, an explicit table's own budgets when no other mean is
// asked for.
func FuzzReadTable(f *testing.F) {
	for _, seed := range []string{
		`{"kind": "uniform"}`,
		`{"kind": "pyramid", "beta": 8}`,
		`{"kind": "layers", "budget": 64, "layers": [100, 80, 60, 40, 40]}`,
		`{"layers": [3, 5, 7]}`,
		`{"kind": "layers", "budget": 16, "layers": [16, 16, 16], "heads": [[8, 24], [16, 16], [30, 2]]}`,
		`{"kind": "layers", "layers": [9223372036854775807, 1, 1]}`,
		`{"kind": "layers", "budget": 4, "layers": [1, 2, 9], "model": "m.gguf", "source": "evolkv"}`,
		`{"kind": "layers", "layers": []}`,
		`{"kind": "layers", "layers": [0]}`,
		`{"kind": "pyramid", "beta": -1}`,
		`{"kind": "cone"}`,
		`{"kind": "uniform", "extra": 1}`,
		`{"kind": "layers", "layers": [1], "heads": [[1], [2]]}`,
		`[1, 2, 3]`,
		`{`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ReadTable(bytes.NewReader(data))
		if err != nil {
			if tab != nil {
				t.Fatalf("error %v with a table", err)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := tab.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadTable(&buf)
		if err != nil {
			t.Fatalf("a table read from %q does not read back: %v\n%s", data, err, buf.String())
		}
		if back.Kind != tab.Kind || back.Budget != tab.Budget || len(back.Layers) != len(tab.Layers) {
			t.Fatalf("round trip changed %+v to %+v", tab, back)
		}
		for _, s := range fuzzShapes {
			if tab.Check(s) != nil {
				continue
			}
			for _, mean := range []int{0, 1, 16, 100} {
				for _, n := range []int{0, 5, 64} {
					got := tab.Resolve(s, mean, n, 4)
					if len(got) != s.Layers {
						t.Fatalf("resolved %d layers for %d", len(got), s.Layers)
					}
					for l, row := range got {
						if len(row) != s.KVHeads {
							t.Fatalf("layer %d: %d heads for %d", l, len(row), s.KVHeads)
						}
						for h, b := range row {
							if b < 0 {
								t.Fatalf("%+v mean %d n %d: layer %d head %d gets budget %d", tab, mean, n, l, h, b)
							}
							if tab.Kind == TableLayers && tab.Heads == nil && (mean == 0 || tab.Budget == 0 || mean == tab.Budget) && b != tab.Layers[l] {
								t.Fatalf("%+v: layer %d resolved to %d, want its own %d", tab, l, b, tab.Layers[l])
							}
						}
					}
				}
			}
		}
	})
}

// FuzzParseSpec feeds arbitrary strings to ParseSpec (tamp eval kv --spec,
// tamp sweep --kv) and builds what it accepts. Nothing may panic; an accepted
// spec's budget is positive if given; Hadamard never comes without bits; and
// building it for a model either fails with an error or gives a cache whose
// policy is the one named.
func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{
		"full", "h2o@64", "snapkv:window=16@128+q4", "full+q2+h", "streaming:sinks=2@8",
		"pyramidkv@32+q8", "graphkv:anchors=2,neighbours=3,rounds=2@64", "chunked:recent=0.25@16",
		"adaptive:seg=8,alpha=1@32", "snapkv:pool=avg,kernel=5,decode=8@48", "h2o:recent=0.5@10+q4+h",
		"@5", "snapkv@0", "snapkv@-3", "snapkv@x", "full+h", "full+q3", "full+z", "+q4", "snapkv:windw=4@8",
		"snapkv:window@8", ":@+", "snapkv:window=1,window=2@8", "nosuch@4", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "kv: ") {
				t.Fatalf("error %q does not name the package", err)
			}
			return
		}
		if spec.Budget < 0 || strings.Contains(s, "@") && spec.Budget < 1 {
			t.Fatalf("%q: budget %d", s, spec.Budget)
		}
		if spec.Quant.Hadamard && spec.Quant.Bits == 0 {
			t.Fatalf("%q: Hadamard without bits", s)
		}
		if spec.Budget > 1<<16 {
			return // a real but huge budget: building is fine, just slow to check
		}
		for _, shape := range fuzzShapes {
			c, pol, err := Build(spec, shape, 32, F16)
			if err != nil {
				continue
			}
			if c == nil {
				t.Fatalf("%q: no cache", s)
			}
			name, _, _ := strings.Cut(spec.Policy, ":")
			if pol == nil && name != "" && name != "full" || pol != nil && pol.Name() != name {
				t.Fatalf("%q built policy %v", s, pol)
			}
		}
	})
}
