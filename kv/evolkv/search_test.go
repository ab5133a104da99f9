package evolkv

import (
	"context"
	"math"
	"testing"
)

// TestSearchFindsPlantedTable: the objective is the distance to a planted
// table with the same mean; the search must hold the mean exactly and get
// close to the plant, better than uniform.
func TestSearchFindsPlantedTable(t *testing.T) {
	plant := []int{120, 90, 60, 40, 30, 20}
	mean := 60
	obj := func(_ context.Context, b []int) (float64, error) {
		var s float64
		for i := range b {
			d := math.Log(float64(b[i]) / float64(plant[i]))
			s += d * d
		}
		return s, nil
	}
	var calls int
	res, err := Search(context.Background(), obj, Options{Layers: 6, Mean: mean, Group: 2, Generations: 30, Seed: 1,
		Progress: func(p Progress) {
			calls++
			total := 0
			for _, v := range p.Budgets {
				total += v
			}
			if total != 6*mean {
				t.Fatalf("budgets %v have mean %v, want %d", p.Budgets, float64(total)/6, mean)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	b, best := res.Budgets, res.Best
	uniform, _ := obj(context.Background(), []int{60, 60, 60, 60, 60, 60})
	if best > uniform/10 {
		t.Errorf("best %v (table %v) not far below uniform %v", best, b, uniform)
	}
	if res.Uniform != uniform || res.Evals < 30 {
		t.Errorf("reported uniform %v after %d evaluations, want %v", res.Uniform, res.Evals, uniform)
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
	t.Logf("found %v (objective %.4f, uniform %.4f)", b, best, uniform)
}

func TestCompleteHoldsBounds(t *testing.T) {
	o := Options{Layers: 4, Mean: 10, Min: 2, Max: 20}
	cur := []int{10, 10, 10, 10}
	// A candidate asking for huge budgets in the first group must leave the
	// others at least Min.
	b := complete(cur, 0, 2, []float64{5, 5}, o, 40)
	if b[0]+b[1]+b[2]+b[3] != 40 || b[2] < 2 || b[3] < 2 || b[0] > 20 {
		t.Errorf("completed %v", b)
	}
}
