package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is a named n-dimensional array in one of the Types. Dims lists sizes
// innermost first, as GGUF does: Dims[0] is the length of a row, so a weight
// matrix with Dims [in, out] has out rows of in elements. Data usually aliases a
// memory-mapped file and must not be modified.
type Tensor struct {
	Name string
	Type Type
	Dims []int
	Data []byte
	// Parent is the tensor this one is a slice of (one expert of a stacked
	// mixture-of-experts tensor), or nil.
	Parent *Tensor
}

// Cols is the row length (Dims[0]).
func (t *Tensor) Cols() int {
	if len(t.Dims) == 0 {
		return 1
	}
	return t.Dims[0]
}

// Rows is the number of rows: the product of all dims after the first.
func (t *Tensor) Rows() int {
	n := 1
	for _, d := range t.Dims[min(1, len(t.Dims)):] {
		n *= d
	}
	return n
}

// Elements is the total element count.
func (t *Tensor) Elements() int { return t.Cols() * t.Rows() }

// RowBytes is the stored size of one row.
func (t *Tensor) RowBytes() int {
	n, _ := RowBytes(t.Type, t.Cols())
	return n
}

// Row returns the stored bytes of row i.
func (t *Tensor) Row(i int) []byte {
	rb := t.RowBytes()
	return t.Data[i*rb : (i+1)*rb]
}

// Check verifies that Data holds exactly the bytes Dims and Type call for and
// that rows hold whole blocks.
func (t *Tensor) Check() error {
	rb, err := RowBytes(t.Type, t.Cols())
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if want := rb * t.Rows(); want != len(t.Data) {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, has %d", t.Name, t.Type, t.Dims, want, len(t.Data))
	}
	return nil
}

// F32s views little-endian float32 bytes as a []float32 without copying when
// the bytes are suitably aligned (GGUF data always is), else returns a copy.
// The result must not be modified: it may alias a read-only mapping.
func F32s(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
