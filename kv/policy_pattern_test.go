package kv

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// patternTests names, for every registered policy, the test that checks it on
// hand-made score patterns (what must be kept is kept). A policy registered
// without one fails TestEveryPolicyHasPatternTest.
var patternTests = map[string]string{
	"full":      "TestFullIsNoPolicy",
	"streaming": "TestStreamingKeepsSinksAndRecent",
	"h2o":       "TestH2OKeepsHeavyHittersAndRecent",
	"snapkv":    "TestSnapKVKeepsVotedClusterAndWindow",
	"pyramidkv": "TestPyramidKVBudgets",
	"graphkv":   "TestGraphKVDecaysNearDuplicates",
	"chunked":   "TestChunkedBoundsMemoryAndFixesScores",
	"adaptive":  "TestAdaptiveFollowsSurprisal",
}

func TestEveryPolicyHasPatternTest(t *testing.T) {
	for _, name := range Policies() {
		if patternTests[name] == "" {
			t.Errorf("policy %q has no test on hand-made score patterns; add one and list it in patternTests", name)
		}
	}
}

// TestEveryPolicyKeepsPlantedTokens runs every policy on one planted pattern:
// a 40-token prompt whose token 17 drew far more attention than any other,
// with a budget of 16 (room beyond the windows every policy protects). Every policy that ranks by attention keeps token 17,
// the newest token, and no more than the budget; StreamingLLM, which ignores
// attention, keeps its sinks and the newest tokens instead; full keeps all.
func TestEveryPolicyKeepsPlantedTokens(t *testing.T) {
	const n, budget, heavy = 40, 16, 17
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([][]float32, n)
	for p := range keys {
		keys[p] = []float32{rng.Float32() - .5, rng.Float32() - .5, rng.Float32() - .5, rng.Float32() - .5}
	}
	keyOf := func(l, h, p int) []float32 {
		if p < n {
			return keys[p]
		}
		return nil
	}
	for _, name := range Policies() {
		t.Run(name, func(t *testing.T) {
			spec := Spec{Policy: name, Budget: budget}
			if name == "full" {
				spec.Budget = 0
			}
			c, p, err := Build(spec, oneHead, 64, F32)
			if err != nil {
				t.Fatal(err)
			}
			for pos := range n {
				appendPos(t, c, pos, keyOf)
			}
			if c.Scores(0, 0) != nil {
				// Small, varied attention everywhere, much more for the heavy hitter.
				setScores(c, func(pos int) float32 {
					if pos == heavy {
						return 100
					}
					return 0.01 * float32(pos%5+1)
				})
			}
			ev := prefill(n)
			if p != nil && p.Needs().Surprisal {
				ev.Surprisal = make([]float32, n)
				for i := range ev.Surprisal {
					ev.Surprisal[i] = 1
				}
			}
			if p != nil {
				if err := p.AfterChunk(c, ev); err != nil {
					t.Fatal(err)
				}
				if err := p.AfterPrefill(c, ev); err != nil {
					t.Fatal(err)
				}
			}
			kept := positions(c, 0, 0)
			switch name {
			case "full":
				if len(kept) != n {
					t.Fatalf("full kept %d of %d", len(kept), n)
				}
			case "streaming":
				if !slices.Contains(kept, 0) || !slices.Contains(kept, n-1) || len(kept) != budget {
					t.Fatalf("streaming kept %v: want the first sink, the newest token and %d in all", kept, budget)
				}
			default:
				if !slices.Contains(kept, heavy) || !slices.Contains(kept, n-1) || len(kept) > budget {
					t.Fatalf("%s kept %v: want %d (the heavy hitter), %d (the newest) and at most %d", name, kept, heavy, n-1, budget)
				}
			}
			// Every kept entry still holds its own token's value.
			v := make([]float32, oneHead.HeadDim)
			for j, pos := range kept {
				c.Value(0, 0, j, v)
				if v[0] != float32(pos) {
					t.Errorf("entry %d (position %d) holds the value of %v", j, pos, v[0])
				}
			}
		})
	}
}
