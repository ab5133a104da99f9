package kv

import "fmt"

// PyramidKV (Cai et al., "PyramidKV: Dynamic KV Cache Compression based on
// Pyramidal Information Funneling", 2024; code Zefan-Cai/KVCache-Factory,
// pyramidkv/pyramidkv_utils.py) selects tokens exactly as SnapKV does but
// gives each layer its own budget along a linear schedule: lower layers, whose
// attention is spread wide, keep more; upper layers, whose attention has
// funnelled onto a few tokens, keep less.
//
// Parameters: those of snapkv, plus beta=N (default 20).
//
// Faithful: the schedule in KVCache-Factory's integer arithmetic (see
// [Table.Resolve]): with B = budget−window, the top layer keeps B/β selected
// tokens, the bottom 2B−B/β (clamped to the prompt), linearly in between,
// each plus the window; the mean stays at the budget.
func init() {
	Register("pyramidkv", func(s Setup) (Policy, error) {
		beta, err := s.Params.Int("beta", 20)
		if err != nil {
			return nil, err
		}
		if beta < 1 {
			return nil, fmt.Errorf("beta=%d must be at least 1", beta)
		}
		if s.Table != nil && s.Table.Kind != TablePyramid && s.Table.Kind != TableUniform {
			return nil, fmt.Errorf("sets its own pyramid budgets; use snapkv with --kv-table for other tables")
		}
		if s.Budget <= 0 && s.Table != nil {
			s.Budget = s.Table.Budget
		}
		s.Table = &Table{Kind: TablePyramid, Beta: beta}
		return newSnapKV("pyramidkv", s)
	})
}
