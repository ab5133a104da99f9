package kv

// budgeter resolves a policy's table into per-head budgets, caching the
// result while the inputs stay the same.
type budgeter struct {
	shape  Shape
	mean   int
	table  *Table
	window int

	n      int
	cached [][]int
}

func newBudgeter(s Setup, window int) budgeter {
	mean := s.Budget
	if mean <= 0 && s.Table != nil {
		mean = s.Table.Budget
	}
	return budgeter{shape: s.Shape, mean: mean, table: s.Table, window: window, n: -1}
}

// at returns [layer][head] budgets when heads hold n entries. Only the
// pyramid depends on n; other tables are resolved once.
func (b *budgeter) at(n int) [][]int {
	if b.table != nil && b.table.Kind == TablePyramid {
		if n != b.n || b.cached == nil {
			b.cached, b.n = b.table.Resolve(b.shape, b.mean, n, b.window), n
		}
		return b.cached
	}
	if b.cached == nil {
		b.cached = b.table.Resolve(b.shape, b.mean, n, b.window)
	}
	return b.cached
}
