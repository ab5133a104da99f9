package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"tamp/gguf"
	"tamp/llama2c"
	"tamp/quant"
)

func newInspectCmd() *cobra.Command {
	var (
		tok      string
		showAll  bool
		jsonOut  bool
		maxItems int
	)
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Print a model file's metadata and tensor table with sizes and bits per weight",
		Example: `  tamp inspect stories260K.gguf
  tamp inspect --json stories260K-Q4_0-mixed.gguf`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			path, err := resolveModel(cmd, ref)
			if err != nil {
				return err
			}
			var f *gguf.File
			if llama2c.IsCheckpoint(path) {
				f, err = llama2c.Load(path, tok)
			} else {
				f, err = gguf.Open(path)
			}
			if err != nil {
				return err
			}
			defer f.Close()
			if !showAll {
				maxItems = min(maxItems, 8)
			}
			if jsonOut {
				return inspectJSON(cmd.OutOrStdout(), path, f)
			}
			return inspectText(cmd.OutOrStdout(), path, f, maxItems, showAll)
		},
	}
	cmd.Flags().StringVar(&tok, "tokenizer", "", "llama2.c tokenizer .bin (only for llama2.c checkpoints)")
	cmd.Flags().BoolVar(&showAll, "all", false, "print whole metadata arrays")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON instead of tables")
	cmd.Flags().IntVar(&maxItems, "items", 8, "array elements to show without --all")
	return cmd
}

// tensorRow is one line of the tensor table.
type tensorRow struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int   `json:"shape"`
	Bytes int64   `json:"bytes"`
	BPW   float64 `json:"bits_per_weight"`
	// Errors tamp quantize measured and stored in the file, if any.
	RMSE *float64 `json:"rmse,omitempty"`
	KLD  *float64 `json:"kld,omitempty"`
}

func tensorRows(f *gguf.File) (rows []tensorRow, total int64, elems int64) {
	errs := quant.TensorErrors(f)
	for _, t := range f.Tensors {
		tt := t.Tensor()
		n := int64(tt.Elements())
		b := int64(len(t.Data))
		row := tensorRow{Name: t.Name, Type: t.Type.String(), Shape: tt.Dims, Bytes: b, BPW: float64(b*8) / float64(max(n, 1))}
		if e, ok := errs[t.Name]; ok {
			row.RMSE = &e.RMSE
			if !math.IsNaN(e.KLD) {
				row.KLD = &e.KLD
			}
		}
		rows = append(rows, row)
		total += b
		elems += n
	}
	return rows, total, elems
}

func inspectText(w io.Writer, path string, f *gguf.File, items int, all bool) error {
	fmt.Fprintf(w, "file: %s\nGGUF version %d, %d metadata keys, %d tensors, alignment %d\n\n", path, f.Version, len(f.KV), len(f.Tensors), f.Alignment)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tTYPE\tVALUE")
	for _, kv := range f.KV {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", kv.Key, valueType(kv.Value), formatValue(kv.Value, items, all))
	}
	tw.Flush()
	fmt.Fprintln(w)
	rows, total, elems := tensorRows(f)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NAME\tTYPE\tSHAPE\tBYTES\tBPW\tRMSE\tKLD\t")
	byType := map[string][2]int64{}
	for _, r := range rows {
		rmse, kld := "-", "-"
		if r.RMSE != nil {
			rmse = fmt.Sprintf("%.3g", *r.RMSE)
		}
		if r.KLD != nil {
			kld = fmt.Sprintf("%.3g", *r.KLD)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%.3f\t%s\t%s\t\n", r.Name, r.Type, r.Shape, r.Bytes, r.BPW, rmse, kld)
		bt := byType[r.Type]
		byType[r.Type] = [2]int64{bt[0] + r.Bytes, bt[1] + 1}
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal: %d tensors, %d weights, %d bytes of tensor data (%s), %.3f bits per weight\n",
		len(rows), elems, total, humanBytes(total), float64(total*8)/float64(max(elems, 1)))
	var parts []string
	for _, r := range rows {
		if bt, ok := byType[r.Type]; ok {
			parts = append(parts, fmt.Sprintf("%s: %d tensors, %s", r.Type, bt[1], humanBytes(bt[0])))
			delete(byType, r.Type)
		}
	}
	fmt.Fprintf(w, "by type: %s\n", strings.Join(parts, "; "))
	return nil
}

func inspectJSON(w io.Writer, path string, f *gguf.File) error {
	rows, total, elems := tensorRows(f)
	meta := map[string]any{}
	for _, kv := range f.KV {
		meta[kv.Key] = jsonValue(kv.Value)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"file": path, "version": f.Version, "alignment": f.Alignment,
		"metadata": meta, "tensors": rows,
		"total_bytes": total, "total_weights": elems,
		"bits_per_weight": float64(total*8) / float64(max(elems, 1)),
	})
}

func valueType(v gguf.Value) string {
	if a, ok := v.V.(gguf.Array); ok {
		return fmt.Sprintf("[%s]", a.Elem)
	}
	return v.Type.String()
}

func jsonValue(v gguf.Value) any {
	if a, ok := v.V.(gguf.Array); ok {
		if nested, ok := a.Values.([]gguf.Array); ok {
			out := make([]any, len(nested))
			for i, n := range nested {
				out[i] = jsonValue(gguf.Value{Type: gguf.TypeArray, V: n})
			}
			return out
		}
		return a.Values
	}
	return v.V
}

// formatValue prints a metadata value, eliding long arrays.
func formatValue(v gguf.Value, items int, all bool) string {
	a, ok := v.V.(gguf.Array)
	if !ok {
		if s, ok := v.V.(string); ok {
			if !all && len(s) > 80 {
				s = s[:77] + "..."
			}
			return fmt.Sprintf("%q", s)
		}
		return fmt.Sprint(v.V)
	}
	rv := reflect.ValueOf(a.Values)
	n := rv.Len()
	show := n
	if !all {
		show = min(n, items)
	}
	parts := make([]string, show)
	for i := range show {
		e := rv.Index(i).Interface()
		if s, ok := e.(string); ok {
			parts[i] = fmt.Sprintf("%q", s)
		} else if na, ok := e.(gguf.Array); ok {
			parts[i] = formatValue(gguf.Value{Type: gguf.TypeArray, V: na}, items, all)
		} else {
			parts[i] = fmt.Sprint(e)
		}
	}
	s := "[" + strings.Join(parts, ", ")
	if show < n {
		s += fmt.Sprintf(", ... (%d in all)", n)
	}
	return s + "]"
}
