package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The reference decoders below are written from the block descriptions in
// ggml-common.h, one element at a time: element e's bits are located
// directly from e instead of walking the block the way the kernels do. Float
// operations use ggml's order, so results must match bit for bit.

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func h16(b []byte) float32 { return F16ToF32(le16(b)) }

// nib returns element e's 4-bit field of a 16-byte array in which byte j
// holds elements j (low nibble) and j+16 (high nibble).
func nib(qs []byte, e int) int {
	if e < 16 {
		return int(qs[e] & 15)
	}
	return int(qs[e-16] >> 4)
}

func refQ4_0(b []byte, e int) float32 { return float32(nib(b[2:18], e)-8) * h16(b) }
func refQ4_1(b []byte, e int) float32 {
	return float32(float32(nib(b[4:20], e))*h16(b)) + h16(b[2:])
}
func refQ5_0(b []byte, e int) float32 {
	hi := int(binary.LittleEndian.Uint32(b[2:])>>e&1) << 4
	return float32(nib(b[6:22], e)|hi-16) * h16(b)
}
func refQ5_1(b []byte, e int) float32 {
	hi := int(binary.LittleEndian.Uint32(b[4:])>>e&1) << 4
	return float32(float32(nib(b[8:24], e)|hi)*h16(b)) + h16(b[2:])
}
func refQ8_0(b []byte, e int) float32 { return float32(int8(b[2+e])) * h16(b) }
func refQ8_1(b []byte, e int) float32 { return float32(int8(b[4+e])) * h16(b) }

// twoBit is element e's 2-bit field of Q2_K/Q3_K's 64-byte array: each
// 128-element half uses 32 bytes, element 32·g + l of a half sitting in byte
// l at bit 2g.
func twoBit(qs []byte, e int) int {
	half, r := e/128, e%128
	return int(qs[32*half+r%32] >> (2 * (r / 32)) & 3)
}

func refQ2_K(b []byte, e int) float32 {
	sc := b[e/16]
	dl := h16(b[80:]) * float32(sc&15)
	ml := h16(b[82:]) * float32(sc>>4)
	return float32(dl*float32(twoBit(b[16:80], e))) - ml
}

// sixBitQ3 is Q3_K's scale j: its low nibble is nibble j of the first 8
// bytes (byte j%8, low nibble for j<8), its top 2 bits are 2-bit field j of
// the last 4 bytes read as a little-endian uint32 in the order byte j%4,
// shift 2·(j/4).
func sixBitQ3(s []byte, j int) int {
	lo := int(s[j%8]>>(4*(j/8))) & 15
	hi := int(s[8+j%4]>>(2*(j/4))) & 3
	return lo | hi<<4
}

func refQ3_K(b []byte, e int) float32 {
	q := twoBit(b[32:96], e)
	if b[e%32]>>(e/32)&1 == 0 { // hmask: element e's high bit is bit e/32 of byte e%32
		q -= 4
	}
	dl := h16(b[108:]) * float32(sixBitQ3(b[96:108], e/16)-32)
	return dl * float32(q)
}

// scaleMinRef unpacks Q4_K/Q5_K's 12-byte scales with ggml's word-level
// kmask formulation (the kernels use the per-index get_scale_min_k4).
func scaleMinRef(s []byte) (sc, mn [8]uint8) {
	var u [4]uint32
	for i := 0; i < 3; i++ {
		u[i] = binary.LittleEndian.Uint32(s[4*i:])
	}
	const k1, k2, k3 = 0x3f3f3f3f, 0x0f0f0f0f, 0x03030303
	u[3] = (u[2] >> 4 & k2) | (u[1] >> 6 & k3 << 4)
	aux := u[1] & k1
	u[1] = (u[2] & k2) | (u[0] >> 6 & k3 << 4)
	u[2] = aux
	u[0] &= k1
	for i := 0; i < 8; i++ {
		w := i / 4
		sc[i] = uint8(u[w] >> (8 * (i % 4)))
		mn[i] = uint8(u[2+w] >> (8 * (i % 4)))
	}
	return sc, mn
}

// fourBit is element e's nibble of Q4_K/Q5_K's 128-byte array: each 64
// elements use 32 bytes, the first 32 in the low nibbles.
func fourBit(qs []byte, e int) int {
	c, r := e/64, e%64
	return int(qs[32*c+r%32] >> (4 * (r / 32)) & 15)
}

func refQ4_K(b []byte, e int) float32 {
	sc, mn := scaleMinRef(b[4:16])
	s := e / 32
	d := h16(b) * float32(sc[s])
	m := h16(b[2:]) * float32(mn[s])
	return float32(d*float32(fourBit(b[16:144], e))) - m
}

func refQ5_K(b []byte, e int) float32 {
	sc, mn := scaleMinRef(b[4:16])
	s := e / 32
	q := fourBit(b[48:176], e) | int(b[16+e%32]>>(e/32)&1)<<4
	d := h16(b) * float32(sc[s])
	m := h16(b[2:]) * float32(mn[s])
	return float32(d*float32(q)) - m
}

func refQ6_K(b []byte, e int) float32 {
	half, r := e/128, e%128
	g, l := r/32, r%32
	lowByte := b[64*half+32*(g%2)+l]
	lo := int(lowByte>>(4*(g/2))) & 15
	hi := int(b[128+32*half+l]>>(2*g)) & 3
	q := lo | hi<<4 - 32
	sc := int8(b[192+e/16])
	return float32(h16(b[208:])*float32(sc)) * float32(q)
}

func refQ8_K(b []byte, e int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b)) * float32(int8(b[4+e]))
}

var refDecoders = map[Type]func(b []byte, e int) float32{
	Q4_0: refQ4_0, Q4_1: refQ4_1, Q5_0: refQ5_0, Q5_1: refQ5_1,
	Q8_0: refQ8_0, Q8_1: refQ8_1,
	Q2_K: refQ2_K, Q3_K: refQ3_K, Q4_K: refQ4_K, Q5_K: refQ5_K, Q6_K: refQ6_K,
	Q8_K: refQ8_K,
	F32: func(b []byte, e int) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b[4*e:]))
	},
	F16:  func(b []byte, e int) float32 { return h16(b[2*e:]) },
	BF16: func(b []byte, e int) float32 { return math.Float32frombits(uint32(le16(b[2*e:])) << 16) },
}

// halfFields lists the byte offsets of each type's fp16 fields; random
// blocks get finite values there so the reference and kernel both stay
// finite and comparable.
var halfFields = map[Type][]int{
	Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, Q8_0: {0}, Q8_1: {0, 2},
	Q2_K: {80, 82}, Q3_K: {108}, Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
}

// randomHalf is a random finite half of moderate size (subnormals included).
func randomHalf(r *rand.Rand) uint16 {
	for {
		h := uint16(r.Uint32())
		if h&0x7c00 != 0x7c00 && h&0x7fff < 0x5800 { // finite, |h| < 128
			return h
		}
	}
}

// randomBlocks returns nb random blocks of t with finite scales.
func randomBlocks(r *rand.Rand, t Type, nb int) []byte {
	ti, _ := t.Info()
	b := make([]byte, nb*ti.BlockBytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for i := 0; i < nb; i++ {
		blk := b[i*ti.BlockBytes:]
		switch t {
		case F16:
			binary.LittleEndian.PutUint16(blk, randomHalf(r))
		case BF16:
			binary.LittleEndian.PutUint16(blk, F32ToBF16(float32(r.NormFloat64())))
		case F32:
			binary.LittleEndian.PutUint32(blk, math.Float32bits(float32(r.NormFloat64())))
		case Q8_K:
			binary.LittleEndian.PutUint32(blk, math.Float32bits(float32(r.NormFloat64())))
		}
		for _, off := range halfFields[t] {
			binary.LittleEndian.PutUint16(blk[off:], randomHalf(r))
		}
	}
	return b
}

func allTypes() []Type {
	return []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}
}

func TestDequantizeRandomBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range allTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			nb := 300
			if ti.BlockSize == 1 {
				nb = 4096
			}
			src := randomBlocks(r, typ, nb)
			dst := make([]float32, nb*ti.BlockSize)
			if err := Dequantize(typ, src, dst); err != nil {
				t.Fatal(err)
			}
			ref := refDecoders[typ]
			for i := 0; i < nb; i++ {
				blk := src[i*ti.BlockBytes : (i+1)*ti.BlockBytes]
				for e := 0; e < ti.BlockSize; e++ {
					want := ref(blk, e)
					got := dst[i*ti.BlockSize+e]
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("block %d element %d: got %g, want %g", i, e, got, want)
					}
				}
			}
		})
	}
}

// TestDequantizeKnownBlocks decodes hand-built blocks whose values are known
// without any decoder: the fields are laid out by hand here.
func TestDequantizeKnownBlocks(t *testing.T) {
	seq := func(n int, f func(i int) float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	// Q4_0: d = 0.5; byte j = j | (15-j)<<4 → x[j] = (j-8)/2, x[j+16] = (7-j)/2.
	q40 := []byte{0x00, 0x38}
	for j := 0; j < 16; j++ {
		q40 = append(q40, byte(j)|byte(15-j)<<4)
	}
	// Q4_1: d = 2, m = -1; same nibbles → x[j] = 2j-1, x[j+16] = 2(15-j)-1.
	q41 := append([]byte{0x00, 0x40, 0x00, 0xbc}, q40[2:]...)
	// Q5_0: d = 1, qh = 0xffff0000 (high bit set for elements 16..31), nibble j
	// everywhere → x[j] = j-16, x[j+16] = j.
	q50 := []byte{0x00, 0x3c, 0x00, 0x00, 0xff, 0xff}
	for j := 0; j < 16; j++ {
		q50 = append(q50, byte(j)|byte(j)<<4)
	}
	// Q5_1: d = 1, m = 0.25, qh = 0x0000ffff → x[j] = j+16.25, x[j+16] = j+0.25.
	q51 := []byte{0x00, 0x3c, 0x00, 0x34, 0xff, 0xff, 0x00, 0x00}
	q51 = append(q51, q50[6:]...)
	// Q8_0: d = 0.25, q = j-16.
	q80 := []byte{0x00, 0x34}
	for j := 0; j < 32; j++ {
		q80 = append(q80, byte(int8(j-16)))
	}
	// Q8_K: d = 3 (float32), q = (j%256)-128.
	q8k := binary.LittleEndian.AppendUint32(nil, math.Float32bits(3))
	for j := 0; j < 256; j++ {
		q8k = append(q8k, byte(int8(j-128)))
	}
	q8k = append(q8k, make([]byte, 32)...)
	// Q6_K: d = 1, scales[s] = s+1, every 6-bit q = 33 (low nibble 1, high bits
	// 2) → x[e] = (e/16+1)·1.
	q6k := make([]byte, 210)
	for i := 0; i < 128; i++ {
		q6k[i] = 0x11
	}
	for i := 128; i < 192; i++ {
		q6k[i] = 0xaa // 2-bit fields all 2
	}
	for s := 0; s < 16; s++ {
		q6k[192+s] = byte(s + 1)
	}
	binary.LittleEndian.PutUint16(q6k[208:], 0x3c00)
	// Q2_K: d = 1, dmin = 0.5, scale byte s = (s%16) | 1<<4, all q = 3 →
	// x[e] = 3·(e/16) - 0.5.
	q2k := make([]byte, 84)
	for s := 0; s < 16; s++ {
		q2k[s] = byte(s) | 1<<4
	}
	for i := 16; i < 80; i++ {
		q2k[i] = 0xff
	}
	binary.LittleEndian.PutUint16(q2k[80:], 0x3c00)
	binary.LittleEndian.PutUint16(q2k[82:], 0x3800)
	// Q4_K: d = 1, dmin = 1, all 8 scales 1 and mins 2 (bytes 0-3 = 1,
	// 4-7 = 2, 8-11 = 0x21), every nibble 5 → x = 5 - 2 = 3.
	q4k := []byte{0x00, 0x3c, 0x00, 0x3c, 1, 1, 1, 1, 2, 2, 2, 2, 0x21, 0x21, 0x21, 0x21}
	for i := 0; i < 128; i++ {
		q4k = append(q4k, 0x55)
	}
	// Q5_K: as Q4_K plus every high bit set → x = 21 - 2 = 19.
	q5k := append([]byte(nil), q4k[:16]...)
	for i := 0; i < 32; i++ {
		q5k = append(q5k, 0xff)
	}
	q5k = append(q5k, q4k[16:]...)
	// Q3_K: d = 2, all 16 scales = 33 (low nibbles 1, top bits 2 → byte 8..11
	// = 0xaa), q low bits = 1, hmask all set → x = 2·1·1 = 2.
	q3k := make([]byte, 110)
	for i := 0; i < 32; i++ {
		q3k[i] = 0xff
	}
	for i := 32; i < 96; i++ {
		q3k[i] = 0x55
	}
	for i := 96; i < 104; i++ {
		q3k[i] = 0x11
	}
	for i := 104; i < 108; i++ {
		q3k[i] = 0xaa
	}
	binary.LittleEndian.PutUint16(q3k[108:], 0x4000)

	tests := []struct {
		typ  Type
		src  []byte
		want []float32
	}{
		{Q4_0, q40, seq(32, func(i int) float32 {
			if i < 16 {
				return float32(i-8) / 2
			}
			return float32(7-(i-16)) / 2
		})},
		{Q4_1, q41, seq(32, func(i int) float32 {
			if i < 16 {
				return float32(2*i - 1)
			}
			return float32(2*(15-(i-16)) - 1)
		})},
		{Q5_0, q50, seq(32, func(i int) float32 {
			if i < 16 {
				return float32(i - 16)
			}
			return float32(i - 16)
		})},
		{Q5_1, q51, seq(32, func(i int) float32 {
			if i < 16 {
				return float32(i) + 16.25
			}
			return float32(i-16) + 0.25
		})},
		{Q8_0, q80, seq(32, func(i int) float32 { return float32(i-16) / 4 })},
		{Q8_K, q8k, seq(256, func(i int) float32 { return 3 * float32(i-128) })},
		{Q6_K, q6k, seq(256, func(i int) float32 { return float32(i/16 + 1) })},
		{Q2_K, q2k, seq(256, func(i int) float32 { return 3*float32(i/16) - 0.5 })},
		{Q4_K, q4k, seq(256, func(int) float32 { return 3 })},
		{Q5_K, q5k, seq(256, func(int) float32 { return 19 })},
		{Q3_K, q3k, seq(256, func(int) float32 { return 2 })},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			ti, _ := tc.typ.Info()
			if len(tc.src) != ti.BlockBytes {
				t.Fatalf("test block has %d bytes, want %d", len(tc.src), ti.BlockBytes)
			}
			got := make([]float32, len(tc.want))
			if err := Dequantize(tc.typ, tc.src, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("element %d: got %g, want %g", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDequantizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		typ     Type
		src     int
		dst     int
		wantErr string
	}{
		{"short src", Q4_0, 17, 32, "needs 18 bytes, got 17"},
		{"long src", Q8_0, 35, 32, "needs 34 bytes, got 35"},
		{"partial block", Q4_K, 144, 200, "not a multiple"},
		{"unsupported IQ", IQ2_XXS, 66, 256, "IQ2_XXS"},
		{"unsupported TQ", TQ1_0, 54, 256, "TQ1_0"},
		{"unsupported MXFP4", MXFP4, 17, 32, "MXFP4"},
		{"integer type", I32, 4, 1, "I32"},
		{"unknown id", Type(77), 4, 1, "unknown type id 77"},
		{"tamp type without kernel", TampTypeBase + 999, 4, 1, "tamp-type(2023)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Dequantize(tc.typ, make([]byte, tc.src), make([]float32, tc.dst))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	// The zero-length case is valid and does nothing.
	if err := Dequantize(Q4_0, nil, nil); err != nil {
		t.Errorf("empty: %v", err)
	}
}

func TestDequantizeTensor(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	w := &Tensor{Name: "w", Type: Q8_0, Dims: []int{64, 3}, Data: randomBlocks(r, Q8_0, 6)}
	got, err := DequantizeTensor(w)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 192)
	if err := Dequantize(Q8_0, w.Data, want); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %g != %g", i, got[i], want[i])
		}
	}
	w.Data = w.Data[:len(w.Data)-1]
	if _, err := DequantizeTensor(w); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("truncated tensor: got %v, want an error naming it", err)
	}
	w.Type = IQ4_NL
	w.Data = make([]byte, 6*18)
	if _, err := DequantizeTensor(w); err == nil || !strings.Contains(err.Error(), "IQ4_NL") {
		t.Errorf("unsupported: got %v", err)
	}
}

func TestSupportedAndVecDotType(t *testing.T) {
	tests := []struct {
		typ       Type
		supported bool
		vecDot    Type
	}{
		{F32, true, F32}, {F16, true, F16}, {BF16, true, BF16},
		{Q4_0, true, Q8_0}, {Q5_0, true, Q8_0}, {Q8_0, true, Q8_0},
		{Q4_1, true, Q8_1}, {Q5_1, true, Q8_1},
		{Q2_K, true, Q8_K}, {Q3_K, true, Q8_K}, {Q4_K, true, Q8_K}, {Q5_K, true, Q8_K}, {Q6_K, true, Q8_K},
		{Q8_1, false, Q8_1}, {Q8_K, false, Q8_K}, {IQ2_XXS, false, IQ2_XXS}, {MXFP4, false, MXFP4},
		{I8, false, I8}, {Type(5), false, Type(5)},
	}
	for _, tc := range tests {
		if got := Supported(tc.typ); got != tc.supported {
			t.Errorf("Supported(%s) = %v", tc.typ, got)
		}
		if got := VecDotType(tc.typ); got != tc.vecDot {
			t.Errorf("VecDotType(%s) = %s, want %s", tc.typ, got, tc.vecDot)
		}
	}
}
