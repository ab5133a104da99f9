package quant

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
)

// Options says how to quantize a model.
type Options struct {
	// Type is the target type when Target is nil: the type most weight
	// matrices get, with llama.cpp's per-tensor rules for that file type.
	Type tensor.Type
	// Target, if set, overrides Type: a llama-quantize file type such as
	// Q4_K_M (see ParseTarget).
	Target *Target
	// Pure gives every quantizable tensor the target type (falling back
	// only where its blocks do not fit), like llama-quantize --pure.
	Pure bool
	// Imatrix, if set, weights the quantization error by the importance of
	// each column, as llama-quantize --imatrix does.
	Imatrix *Imatrix
	// Plan, if set, gives each quantizable tensor (and each expert) its
	// type, overriding the target's rules: the result of Allocate.
	Plan *Plan
	// Progress, if set, is called after each tensor.
	Progress func(done, total int, name string)
}

// TensorReport says what happened to one tensor.
type TensorReport struct {
	Name     string
	From, To tensor.Type
	Shape    []int
	Elements int
	Bytes    int64
	// Note explains a type other than the one asked for.
	Note string
	// RMSE is the root-mean-square difference between the original and the
	// quantized weights (0 when the tensor was copied).
	RMSE float64
	// KLD is the damage Allocate measured for this tensor at its type: the
	// mean KL divergence of the model's next-token distribution when only
	// this tensor is quantized, on the calibration text (for an expert's
	// tensors, that of the expert's gate, up and down together; for a
	// stacked expert tensor, the sum over its experts). NaN when not
	// measured.
	KLD float64
}

// BitsPerWeight is the tensor's storage cost per element.
func (r TensorReport) BitsPerWeight() float64 {
	return float64(r.Bytes*8) / float64(max(r.Elements, 1))
}

// MarshalJSON writes the report with type names and bits per weight.
func (r TensorReport) MarshalJSON() ([]byte, error) {
	var kld *float64
	if !math.IsNaN(r.KLD) {
		kld = &r.KLD
	}
	return json.Marshal(struct {
		Name     string   `json:"name"`
		From     string   `json:"from"`
		To       string   `json:"type"`
		Shape    []int    `json:"shape"`
		Elements int      `json:"elements"`
		Bytes    int64    `json:"bytes"`
		BPW      float64  `json:"bits_per_weight"`
		RMSE     float64  `json:"rmse"`
		KLD      *float64 `json:"kld,omitempty"`
		Note     string   `json:"note,omitempty"`
	}{r.Name, r.From.String(), r.To.String(), r.Shape, r.Elements, r.Bytes, r.BitsPerWeight(), r.RMSE, kld, r.Note})
}

// Report describes a quantized model.
type Report struct {
	Target            string
	Tensors           []TensorReport
	InBytes, OutBytes int64 // tensor data
	Elements          int64
	Fallbacks         int // tensors stored in another type than asked, and why is in their Note
	Warnings          []string
	// Allocation is the budgeted allocation's summary, when Options.Plan
	// came from Allocate.
	Allocation *AllocationSummary `json:",omitempty"`
}

// BitsPerWeight is the whole model's tensor-data cost per element.
func (r *Report) BitsPerWeight() float64 {
	return float64(r.OutBytes*8) / float64(max(r.Elements, 1))
}

// WriteJSON writes the report as indented JSON (tamp quantize --report).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Target     string             `json:"target"`
		Tensors    []TensorReport     `json:"tensors"`
		InBytes    int64              `json:"input_bytes"`
		OutBytes   int64              `json:"output_bytes"`
		Elements   int64              `json:"weights"`
		BPW        float64            `json:"bits_per_weight"`
		Fallbacks  int                `json:"fallbacks"`
		Warnings   []string           `json:"warnings,omitempty"`
		Allocation *AllocationSummary `json:"allocation,omitempty"`
	}{r.Target, r.Tensors, r.InBytes, r.OutBytes, r.Elements, r.BitsPerWeight(), r.Fallbacks, r.Warnings, r.Allocation})
}

// WriteTable prints the per-tensor table and the totals.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NAME\tFROM\tTYPE\tSHAPE\tBYTES\tBPW\tRMSE\tKLD\t NOTE")
	for _, t := range r.Tensors {
		kld := "-"
		if !math.IsNaN(t.KLD) {
			kld = fmt.Sprintf("%.3g", t.KLD)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%.3f\t%.3g\t%s\t %s\n", t.Name, t.From, t.To, t.Shape, t.Bytes, t.BitsPerWeight(), t.RMSE, kld, t.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "total: %d tensors, %d weights, %d → %d bytes of tensor data, %.4f bits per weight, %d fallbacks\n",
		len(r.Tensors), r.Elements, r.InBytes, r.OutBytes, r.BitsPerWeight(), r.Fallbacks)
	return err
}

// Writable reports whether Quantize can produce type t.
func Writable(t tensor.Type) bool {
	switch t {
	case tensor.F32, tensor.F16, tensor.BF16, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
		tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K:
		return true
	}
	return IsSQ(t)
}

// WritableTypes lists the types Quantize can produce, by name.
func WritableTypes() string {
	names := []string{"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}
	for _, t := range SQTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// Metadata keys tamp adds to the files it quantizes.
const (
	KeyTarget     = "tamp.quantize.target"
	KeyErrorNames = "tamp.quantize.error.names" // string array: tensors with measured errors
	KeyErrorRMSE  = "tamp.quantize.error.rmse"  // float32 array, parallel to the names
	KeyErrorKLD   = "tamp.quantize.error.kld"   // float32 array, NaN where not measured
)

// expertNames maps a stacked expert tensor's kind to llama.cpp's historical
// per-expert tensor name, blk.N.<kind>.E.weight.
var expertNames = map[string]string{"ffn_gate_exps": "ffn_gate", "ffn_up_exps": "ffn_up", "ffn_down_exps": "ffn_down"}

// SplitExpertName returns the name tamp gives expert e of a stacked expert
// tensor when the experts are stored with different types, and false for a
// tensor that is not a stacked expert tensor.
func SplitExpertName(stacked string, e int) (string, bool) {
	l := layerOf(stacked)
	if l < 0 {
		return "", false
	}
	kind := strings.TrimSuffix(strings.TrimPrefix(stacked, fmt.Sprintf("blk.%d.", l)), ".weight")
	short, ok := expertNames[kind]
	if !ok {
		return "", false
	}
	return model.ExpertTensorName(l, short, e), true
}

// perExpert reports whether t is one expert's matrix stored as its own
// tensor (blk.N.ffn_gate.E.weight …), and which.
func perExpert(t *gguf.Tensor) (layer, e int, ok bool) {
	l, _, x, ok := model.ParseExpertTensorName(t.Name)
	return l, x, ok && len(t.Dims) >= 2
}

// isExperts reports whether t is a stacked [in, out, experts] MoE tensor.
func isExperts(t *gguf.Tensor) bool {
	_, ok := SplitExpertName(t.Name, 0)
	return ok && len(t.Dims) == 3
}

// Quantize returns a copy of f with its weight matrices converted as opts
// says, and a report of what it did. Metadata is copied, with
// general.file_type set for the target (removed for mixtures llama.cpp has
// no file type for).
func Quantize(f *gguf.File, opts Options) (*gguf.File, *Report, error) {
	var tg Target
	switch {
	case opts.Target != nil:
		tg = *opts.Target
	default:
		if !Writable(opts.Type) {
			return nil, nil, fmt.Errorf("quant: cannot write type %s (writable: %s)", opts.Type, WritableTypes())
		}
		var err error
		if tg, err = ParseTarget(opts.Type.String()); err != nil {
			return nil, nil, err
		}
	}
	if opts.Imatrix != nil {
		if err := opts.Imatrix.Bind(f); err != nil {
			return nil, nil, err
		}
	}
	out := &gguf.File{Version: 3, Alignment: f.Alignment}
	for _, kv := range f.KV {
		out.Set(kv.Key, kv.Value)
	}
	switch {
	case opts.Plan != nil:
		out.Delete("general.file_type")
		out.Set(KeyTarget, gguf.String(opts.Plan.Target))
	case tg.FileType >= 0:
		out.Set("general.file_type", gguf.Uint32(uint32(tg.FileType)))
		out.Set(KeyTarget, gguf.String(tg.Name))
	default:
		out.Delete("general.file_type")
		out.Set(KeyTarget, gguf.String(tg.Name))
	}
	out.Set("general.quantization_version", gguf.Uint32(2))
	if m := opts.Imatrix; m != nil {
		out.Set("quantize.imatrix.dataset", gguf.String(strings.Join(m.Datasets, ", ")))
		out.Set("quantize.imatrix.entries_count", gguf.Int32(int32(len(m.Entries))))
		out.Set("quantize.imatrix.chunks_count", gguf.Int32(int32(m.Chunks)))
	}
	rs := newRuleState(f, opts.Imatrix != nil)
	rules := !opts.Pure && !isFloat(tg.Type)
	rep := &Report{Target: tg.Name}
	if opts.Plan != nil {
		rep.Target = opts.Plan.Target
		rep.Allocation = opts.Plan.Summary
	}
	warned := false
	for i, t := range f.Tensors {
		tt := t.Tensor()
		if !Quantizable(t) {
			if err := out.AddTensor(t.Name, t.Type, t.Dims, t.Data); err != nil {
				return nil, nil, err
			}
			rep.add(TensorReport{Name: t.Name, From: t.Type, To: t.Type, Shape: tt.Dims, Elements: tt.Elements(), Bytes: int64(len(t.Data)), KLD: math.NaN()}, int64(len(t.Data)))
		} else {
			if !isFloat(t.Type) && !warned {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("the input is already quantized (%s is %s): re-quantizing loses more accuracy than quantizing the original weights", t.Name, t.Type))
				warned = true
			}
			// Types per matrix (one for ordinary tensors, one per expert).
			mats := 1
			if isExperts(t) {
				mats = int(t.Dims[2])
			}
			types := make([]tensor.Type, mats)
			notes := make([]string, mats)
			klds := make([]float64, mats)
			for e := range types {
				klds[e] = math.NaN()
			}
			cols := int(t.Dims[0])
			switch {
			case opts.Plan != nil:
				for e := range types {
					key := t.Name
					if mats > 1 {
						key = ExpertKey(layerOf(t.Name), e)
					} else if l, x, ok := perExpert(t); ok {
						key = ExpertKey(l, x)
					}
					pt, ok := opts.Plan.Types[key]
					if !ok {
						pt, notes[e] = rs.tensorType(tg, t.Name, cols)
					} else if n, ok := opts.Plan.Notes[key]; ok {
						notes[e] = n
					}
					if cols%blockSize(pt) != 0 {
						return nil, nil, fmt.Errorf("quant: the plan gives %s type %s, whose blocks of %d do not divide its rows of %d", key, pt, blockSize(pt), cols)
					}
					types[e] = pt
					if d, ok := opts.Plan.Damage[key]; ok {
						klds[e] = d
					}
				}
			case rules:
				nt, note := rs.tensorType(tg, t.Name, cols)
				for e := range types {
					types[e], notes[e] = nt, note
				}
			default:
				nt, note := rs.fallback(tg.Type, cols, t.Name, "")
				for e := range types {
					types[e], notes[e] = nt, note
				}
			}
			reps, err := quantizeTensor(out, t, types, opts.Imatrix)
			if err != nil {
				return nil, nil, err
			}
			for e := range reps {
				reps[e].Note = notes[min(e, len(notes)-1)]
				if len(reps) == mats {
					reps[e].KLD = klds[e]
				} else if mats > 1 {
					reps[e].KLD = sumNaN(klds)
				}
				if strings.HasPrefix(reps[e].Note, "fallback") {
					rep.Fallbacks++
				}
			}
			for e, r := range reps {
				in := int64(0)
				if e == 0 {
					in = int64(len(t.Data))
				}
				rep.add(r, in)
			}
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(f.Tensors), t.Name)
		}
	}
	setErrorMetadata(out, rep)
	return out, rep, nil
}

func sumNaN(v []float64) float64 {
	s, any := 0.0, false
	for _, x := range v {
		if !math.IsNaN(x) {
			s, any = s+x, true
		}
	}
	if !any {
		return math.NaN()
	}
	return s
}

func (r *Report) add(t TensorReport, inBytes int64) {
	r.Tensors = append(r.Tensors, t)
	r.InBytes += inBytes
	r.OutBytes += t.Bytes
	r.Elements += int64(t.Elements)
}

func isFloat(t tensor.Type) bool { return t == tensor.F32 || t == tensor.F16 || t == tensor.BF16 }

// setErrorMetadata records each quantized tensor's measured error in the
// file, so that tamp inspect can show it later.
func setErrorMetadata(out *gguf.File, rep *Report) {
	var names []string
	var rmse, kld []float32
	for _, t := range rep.Tensors {
		if t.From == t.To && t.RMSE == 0 && math.IsNaN(t.KLD) {
			continue
		}
		names = append(names, t.Name)
		rmse = append(rmse, float32(t.RMSE))
		kld = append(kld, float32(t.KLD))
	}
	if len(names) == 0 {
		return
	}
	out.Set(KeyErrorNames, gguf.StringArray(names))
	out.Set(KeyErrorRMSE, gguf.Float32Array(rmse))
	out.Set(KeyErrorKLD, gguf.Float32Array(kld))
}

// TensorError is a tensor's measured quantization error as stored in a file
// tamp quantized.
type TensorError struct {
	RMSE float64
	KLD  float64 // NaN when not measured
}

// TensorErrors reads the per-tensor errors tamp recorded in f (empty for
// files tamp did not quantize).
func TensorErrors(f *gguf.File) map[string]TensorError {
	names, _ := f.Strings(KeyErrorNames)
	rmse, _ := f.Float32s(KeyErrorRMSE)
	kld, _ := f.Float32s(KeyErrorKLD)
	out := map[string]TensorError{}
	for i, n := range names {
		e := TensorError{KLD: math.NaN()}
		if i < len(rmse) {
			e.RMSE = float64(rmse[i])
		}
		if i < len(kld) {
			e.KLD = float64(kld[i])
		}
		out[n] = e
	}
	return out
}

// quantizeTensor converts one quantizable tensor, matrix by matrix, and adds
// the result to out: one tensor when every matrix has the same type, else
// one tensor per expert (see SplitExpertName).
func quantizeTensor(out *gguf.File, t *gguf.Tensor, types []tensor.Type, im *Imatrix) ([]TensorReport, error) {
	tt := t.Tensor()
	src, err := tensor.DequantizeTensor(tt)
	if err != nil {
		return nil, fmt.Errorf("quant: %s: %w", t.Name, err)
	}
	cols := tt.Cols()
	mats := len(types)
	rowsPer := tt.Rows() / mats
	same := true
	for _, ty := range types {
		same = same && ty == types[0]
	}
	var reps []TensorReport
	var stacked []byte
	var se float64
	for e, ty := range types {
		qw, err := im.weightsFor(t.Name, e, cols)
		if err != nil {
			return nil, err
		}
		x := src[e*rowsPer*cols : (e+1)*rowsPer*cols]
		data, err := quantizeRows(ty, x, cols, qw)
		if err != nil {
			return nil, fmt.Errorf("quant: %s: %w", t.Name, err)
		}
		mse, err := sqError(ty, data, x)
		if err != nil {
			return nil, fmt.Errorf("quant: %s: %w", t.Name, err)
		}
		if same {
			stacked = append(stacked, data...)
			se += mse * float64(len(x))
			continue
		}
		name, _ := SplitExpertName(t.Name, e)
		dims := []uint64{t.Dims[0], t.Dims[1]}
		if err := out.AddTensor(name, ty, dims, data); err != nil {
			return nil, err
		}
		reps = append(reps, TensorReport{Name: name, From: t.Type, To: ty, Shape: []int{cols, rowsPer}, Elements: len(x), Bytes: int64(len(data)), RMSE: math.Sqrt(mse), KLD: math.NaN()})
	}
	if same {
		if err := out.AddTensor(t.Name, types[0], t.Dims, stacked); err != nil {
			return nil, err
		}
		reps = append(reps, TensorReport{Name: t.Name, From: t.Type, To: types[0], Shape: tt.Dims, Elements: len(src), Bytes: int64(len(stacked)), RMSE: math.Sqrt(se / float64(max(len(src), 1))), KLD: math.NaN()})
	}
	return reps, nil
}

// quantizeRows stores rows of cols elements as type t, spreading rows over
// the CPUs. qw, if not nil, is the importance of each column.
func quantizeRows(t tensor.Type, x []float32, cols int, qw []float32) ([]byte, error) {
	rb, err := tensor.RowBytes(t, cols)
	if err != nil {
		return nil, err
	}
	rows := len(x) / cols
	data := make([]byte, rb*rows)
	workers := min(runtime.GOMAXPROCS(0), max(1, rows/16))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := w; r < rows; r += workers {
				if err := QuantizeRow(t, x[r*cols:(r+1)*cols], data[r*rb:(r+1)*rb], qw); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return data, nil
}

// sqError is the mean squared difference between x and data (x stored as t).
func sqError(t tensor.Type, data []byte, x []float32) (float64, error) {
	back := make([]float32, len(x))
	if err := tensor.Dequantize(t, data, back); err != nil {
		return 0, err
	}
	var se float64
	for i, v := range x {
		d := float64(v) - float64(back[i])
		se += d * d
	}
	return se / float64(max(len(x), 1)), nil
}

// TypeCounts summarises a report as "N TYPE" parts, most frequent first.
func (r *Report) TypeCounts() string {
	counts := map[tensor.Type]int{}
	for _, t := range r.Tensors {
		counts[t.To]++
	}
	types := make([]tensor.Type, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if counts[types[i]] != counts[types[j]] {
			return counts[types[i]] > counts[types[j]]
		}
		return types[i] < types[j]
	})
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%d %s", counts[t], t)
	}
	return strings.Join(parts, ", ")
}
