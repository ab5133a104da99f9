package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"tamp/kv"
	"tamp/kv/kveval"
)

func newEvalKVCmd() *cobra.Command {
	var (
		mf                       modelFlags
		textPath, part           string
		prompt, next, ctx, batch int
		windows                  int
		policies, budgets, bits  string
		tables                   string
		specs                    []string
		bestBits                 int
		stream, asJSON, quiet    bool
		plot, kvType, save       string
		group, residual          int
		hadamard                 bool
	)
	cmd := &cobra.Command{
		Use:   "kv -m MODEL -f TEXT",
		Short: "What KV-cache compression costs: every policy × budget against the full cache",
		Long: `Cut the text into windows of --prompt + --next tokens (BOS first). For each
window, prefill --prompt tokens, let the policy compress the cache, then feed
the next tokens one decoding step at a time, comparing every prediction with
the full cache's: perplexity of the text, mean KL divergence to the full
cache (exact, so 'full' gives 0), the rate at which both pick the same top
token, and the cache's peak and final bytes.

Rows are every policy × table × budget, then KIVI quantization of the full
cache for each --bits, then --best-bits: the eviction policy with the lowest
geometric-mean KL over the budgets, combined with that many bits. --spec adds rows
written as POLICY[:k=v,...][@BUDGET][+qBITS][+h].

--stream reads each window of --next+1 tokens one token at a time with the
cache capped at the budget while reading (prefill-time policies recompress
every 8 steps, decode=8, unless their spec says otherwise).`,
		Example: `  tamp eval kv -m stories260K.gguf -f tinystories-sample.txt --part second --bits 8,4,2 --best-bits 4 --plot kv.svg
  tamp eval kv -m stories260K.gguf -f tinystories-sample.txt --policies snapkv --budgets 64 --tables uniform,pyramid,evolkv-64.json
  tamp eval kv -m stories260K.gguf -f tinystories-sample.txt --stream --next 511 --policies streaming,h2o,snapkv --budgets 64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" {
				return fmt.Errorf("eval kv: -f TEXT is required")
			}
			storage, err := parseKV(kvType)
			if err != nil {
				return err
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			text, err := os.ReadFile(textPath)
			if err != nil {
				return err
			}
			toks, err := textPart(e.Tok.Encode(string(text), true, false), part)
			if err != nil {
				return err
			}
			if ctx == 0 {
				ctx = prompt + next
				if stream {
					ctx = next + 1
				}
			}
			o := kveval.Options{Prompt: prompt, Next: next, Stream: stream, Context: ctx, Batch: batch, Storage: storage}
			wins := kveval.Windows(toks, o, e.Tok.BOS(), e.Tok.AddBOS(), windows)
			if len(wins) == 0 {
				return fmt.Errorf("eval kv: the text's %s part is shorter than one window", part)
			}
			quant := func(b int) kv.Quant { return kv.Quant{Bits: b, Group: group, Residual: residual, Hadamard: hadamard} }
			rows, err := kvRows(policies, budgets, tables, stream)
			if err != nil {
				return err
			}
			bitList, err := intList(bits)
			if err != nil {
				return fmt.Errorf("--bits: %w", err)
			}
			for _, b := range bitList {
				rows = append(rows, kv.Spec{Quant: quant(b)})
			}
			for _, s := range specs {
				sp, err := kv.ParseSpec(s)
				if err != nil {
					return err
				}
				if sp.Quant.Bits != 0 {
					sp.Quant.Group, sp.Quant.Residual = group, residual
				}
				rows = append(rows, streamSpec(sp, stream))
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "%s (%s): %d windows of %d tokens, %d rows\n", textPath, part, len(wins), len(wins[0]), len(rows))
			run := func(rows []kv.Spec, what string) ([]*kveval.Result, error) {
				o := o
				if !quiet {
					p := newProgress(w, len(wins), what)
					defer p.Finish()
					o.Progress = func(done, total int) { p.Set(done) }
				}
				return kveval.Evaluate(cmd.Context(), e.Model, wins, rows, o)
			}
			results, err := run(rows, "windows")
			if err != nil {
				return err
			}
			if bestBits > 0 {
				best := bestPolicy(results)
				if best == "" {
					return fmt.Errorf("--best-bits: no eviction policy among the rows")
				}
				var extra []kv.Spec
				for _, r := range results {
					if r.Policy == best && r.Bits == 0 && r.Table == "" && r.Budget > 0 {
						sp := kv.Spec{Policy: best, Budget: r.Budget, Quant: quant(bestBits)}
						extra = append(extra, streamSpec(sp, stream))
					}
				}
				fmt.Fprintf(w, "best eviction policy by mean KL over the budgets: %s; adding %d-bit KV\n", best, bestBits)
				more, err := run(extra, "best policy + KIVI")
				if err != nil {
					return err
				}
				results = append(results, more...)
			}
			if plot != "" {
				title := fmt.Sprintf("%s on %s: KL to the full cache", filepath.Base(e.Path), filepath.Base(textPath))
				var buf bytes.Buffer
				if err := kveval.QualityChart(results, title).WriteSVG(&buf); err != nil {
					return err
				}
				if err := writeKVFile(plot, buf.Bytes()); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s\n", plot)
			}
			doc := map[string]any{
				"model": filepath.Base(e.Path), "text": filepath.Base(textPath), "part": part,
				"prompt": prompt, "next": next, "ctx": ctx, "stream": stream, "windows": len(wins),
				"results": results,
			}
			if save != "" {
				b, err := json.MarshalIndent(doc, "", "  ")
				if err != nil {
					return err
				}
				if err := writeKVFile(save, append(b, '\n')); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			mode := fmt.Sprintf("prefill %d, then %d decoding steps", prompt, next)
			if stream {
				mode = fmt.Sprintf("streaming %d tokens", next+1)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s, %s, %d windows (%s), %d scored positions per row\n\n",
				filepath.Base(e.Path), mode, len(wins), part, results[0].Positions)
			return kveval.WriteTable(cmd.OutOrStdout(), results)
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&textPath, "file", "f", "", "text to evaluate on")
	f.StringVar(&part, "part", "all", "part of the text: first (half), second or all")
	f.IntVar(&prompt, "prompt", 384, "prompt tokens per window (P)")
	f.IntVar(&next, "next", 128, "tokens scored after the prompt (Q)")
	f.IntVar(&ctx, "ctx", 512, "context length (at least P+Q)")
	f.IntVar(&batch, "batch", 0, "prefill chunk (0: the session default, 64)")
	f.IntVar(&windows, "windows", 0, "evaluate at most this many windows; 0 = all")
	f.StringVar(&policies, "policies", "full,streaming,h2o,snapkv,pyramidkv,graphkv,chunked,adaptive", "policies to compare")
	f.StringVar(&budgets, "budgets", "32,64,128,256", "budgets (entries per KV head)")
	f.StringVar(&tables, "tables", "uniform", "per-layer budget tables to cross with the policies: uniform, pyramid, JSON files")
	f.StringVar(&bits, "bits", "", "KIVI rows: full cache quantized to these bits (e.g. 8,4,2)")
	f.IntVar(&bestBits, "best-bits", 0, "also run the best eviction policy with KV quantized to this many bits")
	f.StringArrayVar(&specs, "spec", nil, "extra row POLICY[:k=v,...][@BUDGET][+qBITS][+h] (repeatable)")
	f.IntVar(&group, "kv-group", 32, "KIVI group size")
	f.IntVar(&residual, "kv-residual", 32, "KIVI full-precision recent tokens")
	f.BoolVar(&hadamard, "kv-hadamard", false, "KIVI rows rotate by a Hadamard matrix first")
	f.BoolVar(&stream, "stream", false, "streaming mode: read each window token by token with the cache capped")
	f.BoolVar(&asJSON, "json", false, "print results as JSON")
	f.StringVar(&save, "save", "", "also write the results as JSON to FILE")
	f.StringVar(&plot, "plot", "", "write an SVG plot of KL vs budget per policy to FILE")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress")
	kvStorageFlag(cmd, &kvType)
	return cmd
}

// kvRows crosses policies, tables and budgets. full gets one row; pyramidkv
// only its own table.
func kvRows(policies, budgets, tables string, stream bool) ([]kv.Spec, error) {
	bl, err := intList(budgets)
	if err != nil {
		return nil, fmt.Errorf("--budgets: %w", err)
	}
	var tabs []*kv.Table
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		tab, err := kv.ParseTable(t)
		if err != nil {
			return nil, err
		}
		if tab.Kind == kv.TableLayers {
			// Rows name the table by its file.
			tab.Source = strings.TrimSuffix(filepath.Base(t), filepath.Ext(t))
		}
		tabs = append(tabs, tab)
	}
	if len(tabs) == 0 {
		tabs = []*kv.Table{{Kind: kv.TableUniform}}
	}
	var rows []kv.Spec
	for _, p := range strings.Split(policies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		name, _, _ := strings.Cut(p, ":")
		if name == "full" {
			rows = append(rows, kv.Spec{Policy: "full"})
			continue
		}
		for _, t := range tabs {
			if name == "pyramidkv" && t.Kind != kv.TableUniform {
				continue
			}
			for _, b := range bl {
				sp := kv.Spec{Policy: p, Budget: b}
				if t.Kind != kv.TableUniform {
					sp.Table = t
				}
				rows = append(rows, streamSpec(sp, stream))
			}
		}
	}
	return rows, nil
}

// streamSpec makes prefill-time policies recompress while streaming.
func streamSpec(s kv.Spec, stream bool) kv.Spec {
	if !stream || strings.Contains(s.Policy, "decode=") {
		return s
	}
	name, _, _ := strings.Cut(s.Policy, ":")
	switch name {
	case "snapkv", "pyramidkv", "graphkv", "adaptive", "chunked":
		sep := ":"
		if strings.Contains(s.Policy, ":") {
			sep = ","
		}
		s.Policy += sep + "decode=8"
	}
	return s
}

// bestPolicy is the eviction policy (not full, no quantization, uniform
// table) with the lowest geometric-mean KL over the budgets it was run at.
func bestPolicy(results []*kveval.Result) string {
	sum := map[string]float64{}
	n := map[string]int{}
	var order []string
	for _, r := range results {
		if r.Budget <= 0 || r.Bits != 0 || r.Table != "" && r.Table != kv.TablePyramid {
			continue
		}
		if _, ok := sum[r.Policy]; !ok {
			order = append(order, r.Policy)
		}
		sum[r.Policy] += math.Log(r.KL + 1e-12)
		n[r.Policy]++
	}
	best, bestV := "", math.Inf(1)
	for _, p := range order {
		if v := sum[p] / float64(n[p]); v < bestV {
			best, bestV = p, v
		}
	}
	return best
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
