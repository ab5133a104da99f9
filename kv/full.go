package kv

// full keeps every entry: the uncompressed cache. The forward pass treats it
// as no policy at all, so it costs nothing and equals an engine without KV
// compression exactly.
type full struct{ base }

func (full) Name() string { return "full" }

func init() {
	Register("full", func(Setup) (Policy, error) { return full{}, nil })
}
