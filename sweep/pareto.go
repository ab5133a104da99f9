package sweep

import (
	"cmp"
	"slices"
)

// ParetoMemory returns the indices of the points no other point beats on both
// total memory and mean KL divergence (lower is better for both), ordered by
// memory. Of points with equal memory and KL divergence the first is kept.
func ParetoMemory(points []Point) []int {
	return pareto(points, func(p Point) float64 { return float64(p.TotalBytes) })
}

// ParetoSpeed returns the indices of the points no other point beats on both
// generation speed (higher is better) and mean KL divergence, ordered from
// the fastest. Points without a measured speed are left out.
func ParetoSpeed(points []Point) []int {
	var idx []int
	for i, p := range points {
		if p.GenTPS > 0 {
			idx = append(idx, i)
		}
	}
	sub := make([]Point, len(idx))
	for i, j := range idx {
		sub[i] = points[j]
	}
	front := pareto(sub, func(p Point) float64 { return -p.GenTPS })
	for i := range front {
		front[i] = idx[front[i]]
	}
	return front
}

// pareto finds the points minimising both cost and KL divergence.
func pareto(points []Point, cost func(Point) float64) []int {
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(cost(points[a]), cost(points[b])); c != 0 {
			return c
		}
		return cmp.Compare(points[a].KLD, points[b].KLD)
	})
	var front []int
	for _, i := range order {
		if len(front) == 0 || points[i].KLD < points[front[len(front)-1]].KLD {
			front = append(front, i)
		}
	}
	return front
}
