package tensor

// ggml's K-quants: super-blocks of 256 elements split into sub-blocks of 16 or
// 32, each with a small integer scale (and for Q2_K/Q4_K/Q5_K a min) that
// multiplies fp16 super-block factors.
//
//	Q2_K (84 B):  scales[16] (lo 4 bits scale, hi 4 bits min) | qs[64] | d f16 | dmin f16
//	              x = d·sc·q - dmin·m, q 2 bits
//	Q3_K (110 B): hmask[32] | qs[64] | scales[12] (16 × 6 bits) | d f16
//	              x = d·(sc-32)·(q-4·!hbit), q 2 low bits + 1 high bit
//	Q4_K (144 B): d f16 | dmin f16 | scales[12] (8 scales + 8 mins, 6 bits) | qs[128]
//	              x = d·sc·q - dmin·m, q 4 bits
//	Q5_K (176 B): d f16 | dmin f16 | scales[12] | qh[32] | qs[128]; q 4+1 bits
//	Q6_K (210 B): ql[128] | qh[64] | scales[16] int8 | d f16
//	              x = d·sc·(q-32), q 4 low + 2 high bits
//	Q8_K (292 B): d f32 | qs[256] int8 | bsums[16] int16 (sums of each 16 qs)
//
// The 2-bit fields of Q2_K/Q3_K: byte l of a 32-byte group holds elements l,
// l+32, l+64, l+96 of a 128-element half, lowest bits first. The nibbles of
// Q4_K/Q5_K: byte l of a 32-byte group holds element l (low) and l+32 (high)
// of a 64-element chunk. Float expressions carry explicit float32 conversions
// so that no platform fuses them into FMAs (see legacy.go).

const qkK = 256 // elements per K-quant super-block

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block
// (ggml's get_scale_min_k4): scales 0-3 and mins 0-3 are the low 6 bits of
// bytes 0-3 and 4-7; scales and mins 4-7 take their low 4 bits from the
// nibbles of bytes 8-11 and their top 2 bits from the spare top bits of
// bytes 0-3 (scales) and 4-7 (mins).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// q3kScales unpacks Q3_K's sixteen 6-bit scales (still offset by 32): scale
// j takes its low 4 bits from byte j%8 (low nibble for j<8, high nibble
// after) and its top 2 bits from byte 8+j%4, bits 2·(j/4).
func q3kScales(s []byte, out *[16]int8) {
	_ = s[11]
	for j := 0; j < 16; j++ {
		lo := s[j%8] >> (4 * (j / 8)) & 0x0f
		hi := s[8+j%4] >> (2 * (j / 4)) & 3
		out[j] = int8(lo | hi<<4)
	}
}

func dequantQ2_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*84 : i*84+84]
		sc := b[0:16]
		d, dmin := f16(b[80:]), f16(b[82:])
		y := dst[i*qkK : i*qkK+qkK]
		is := 0
		for n := 0; n < 2; n++ {
			q := b[16+32*n : 16+32*n+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for half := 0; half < 2; half++ {
					s := sc[is]
					is++
					dl := d * float32(s&0x0f)
					ml := dmin * float32(s>>4)
					for l := 0; l < 16; l++ {
						y[l] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
					}
					y = y[16:]
				}
			}
		}
	}
}

func dequantQ3_K(src []byte, dst []float32) {
	var scales [16]int8
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*110 : i*110+110]
		hm := b[0:32]
		q3kScales(b[96:108], &scales)
		dAll := f16(b[108:])
		y := dst[i*qkK : i*qkK+qkK]
		is := 0
		m := byte(1)
		for n := 0; n < 2; n++ {
			q := b[32+32*n : 32+32*n+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for half := 0; half < 2; half++ {
					dl := dAll * float32(int(scales[is])-32)
					is++
					for l := 16 * half; l < 16*half+16; l++ {
						v := int((q[l] >> shift) & 3)
						if hm[l]&m == 0 {
							v -= 4
						}
						y[l-16*half] = dl * float32(v)
					}
					y = y[16:]
				}
				m <<= 1
			}
		}
	}
}

func dequantQ4_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*144 : i*144+144]
		d, dmin := f16(b), f16(b[2:])
		scales := b[4:16]
		y := dst[i*qkK : i*qkK+qkK]
		for j := 0; j < 4; j++ {
			q := b[16+32*j : 16+32*j+32]
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			for l, v := range q {
				y[l] = float32(d1*float32(v&0x0f)) - m1
				y[l+32] = float32(d2*float32(v>>4)) - m2
			}
			y = y[64:]
		}
	}
}

func dequantQ5_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*176 : i*176+176]
		d, dmin := f16(b), f16(b[2:])
		scales := b[4:16]
		qh := b[16:48]
		y := dst[i*qkK : i*qkK+qkK]
		u1, u2 := byte(1), byte(2)
		for j := 0; j < 4; j++ {
			ql := b[48+32*j : 48+32*j+32]
			sc, m := scaleMinK4(2*j, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*j+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			for l, v := range ql {
				lo, hi := v&0x0f, v>>4
				if qh[l]&u1 != 0 {
					lo += 16
				}
				if qh[l]&u2 != 0 {
					hi += 16
				}
				y[l] = float32(d1*float32(lo)) - m1
				y[l+32] = float32(d2*float32(hi)) - m2
			}
			y = y[64:]
			u1 <<= 2
			u2 <<= 2
		}
	}
}

func dequantQ6_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*210 : i*210+210]
		d := f16(b[208:])
		y := dst[i*qkK : i*qkK+qkK]
		for n := 0; n < 2; n++ {
			ql := b[64*n : 64*n+64]
			qh := b[128+32*n : 128+32*n+32]
			sc := b[192+8*n : 192+8*n+8]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				// ggml: d * sc * q, left to right.
				y[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				y[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				y[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				y[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
			y = y[128:]
		}
	}
}

func dequantQ8_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*292 : i*292+292]
		d := f32(b)
		y := dst[i*qkK : i*qkK+qkK]
		for j, q := range b[4:260] {
			y[j] = d * float32(int8(q))
		}
	}
}

// q8kBsum reads the j-th int16 partial sum of a Q8_K block.
func q8kBsum(y []byte, j int) int32 {
	return int32(int16(uint16(y[260+2*j]) | uint16(y[261+2*j])<<8))
}

// The K-quant dot products mirror ggml_vec_dot_<w>_q8_K_generic, including
// its float structure: Q3_K..Q6_K accumulate eight integer lanes (element
// index mod 8) per block and add them into eight float lanes, which are summed
// after the last block; mins are subtracted from the running total per block.

func dotQ2_K(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qkK; i++ {
		x := row[i*84 : i*84+84]
		y := xq[i*292 : i*292+292]
		sc := x[0:16]
		q8 := y[4:260]
		var summs int32
		for j := 0; j < 16; j++ {
			summs += q8kBsum(y, j) * int32(sc[j]>>4)
		}
		dy := f32(y)
		dall := dy * f16(x[80:])
		dmin := dy * f16(x[82:])
		var isum int32
		is := 0
		for k := 0; k < 2; k++ {
			q2 := x[16+32*k : 16+32*k+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for half := 0; half < 2; half++ {
					d := int32(sc[is] & 0x0f)
					is++
					var isuml int32
					for l := 16 * half; l < 16*half+16; l++ {
						isuml += int32(int8(q8[l])) * int32((q2[l]>>shift)&3)
					}
					isum += d * isuml
				}
				q8 = q8[32:]
			}
		}
		sumf += float32(float32(dall*float32(isum)) - float32(dmin*float32(summs)))
	}
	return sumf
}

func dotQ3_K(n int, row, xq []byte) float32 {
	var sums [8]float32
	var scales [16]int8
	var aux [qkK]int8
	for i := 0; i < n/qkK; i++ {
		x := row[i*110 : i*110+110]
		y := xq[i*292 : i*292+292]
		hm := x[0:32]
		a := aux[:]
		m := byte(1)
		for k := 0; k < 2; k++ {
			q3 := x[32+32*k : 32+32*k+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for l, q := range q3 {
					v := int8((q >> shift) & 3)
					if hm[l]&m == 0 {
						v -= 4
					}
					a[l] = v
				}
				a = a[32:]
				m <<= 1
			}
		}
		q3kScales(x[96:108], &scales)
		var aux32 [8]int32
		q8 := y[4:260]
		for j := 0; j < 16; j++ {
			s := int32(scales[j]) - 32
			for l := 0; l < 16; l++ {
				aux32[l%8] += s * int32(int8(q8[16*j+l])) * int32(aux[16*j+l])
			}
		}
		d := f16(x[108:]) * f32(y)
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}

// dotQ45K is the shared body of the Q4_K and Q5_K dot products; hasHigh
// selects Q5_K's extra bit plane.
func dotQ45K(n int, row, xq []byte, blockBytes int, hasHigh bool) float32 {
	var sums [8]float32
	var sumf float32
	for i := 0; i < n/qkK; i++ {
		x := row[i*blockBytes : (i+1)*blockBytes]
		y := xq[i*292 : i*292+292]
		scales := x[4:16]
		qs := x[16:]
		var qh []byte
		if hasHigh {
			qh, qs = x[16:48], x[48:]
		}
		var sc, mn [8]int32
		for j := range sc {
			s, m := scaleMinK4(j, scales)
			sc[j], mn[j] = int32(s), int32(m)
		}
		var sumi int32
		for j := 0; j < 16; j++ {
			sumi += q8kBsum(y, j) * mn[j/2]
		}
		var aux32 [8]int32
		q8 := y[4:260]
		for j := 0; j < 4; j++ {
			q := qs[32*j : 32*j+32]
			lo8 := q8[64*j : 64*j+32]
			hi8 := q8[64*j+32 : 64*j+64]
			var slo, shi [8]int32
			for l, v := range q {
				a, b := int32(v&0x0f), int32(v>>4)
				if hasHigh {
					h := qh[l] >> (2 * j)
					a |= int32(h&1) << 4
					b |= int32(h&2) << 3
				}
				slo[l%8] += a * int32(int8(lo8[l]))
				shi[l%8] += b * int32(int8(hi8[l]))
			}
			s0, s1 := sc[2*j], sc[2*j+1]
			for l := range aux32 {
				aux32[l] += s0*slo[l] + s1*shi[l]
			}
		}
		dy := f32(y)
		d := f16(x) * dy
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
		dmin := f16(x[2:]) * dy
		sumf -= float32(dmin * float32(sumi))
	}
	for _, s := range sums {
		sumf += s
	}
	return sumf
}

func dotQ4_K(n int, row, xq []byte) float32 { return dotQ45K(n, row, xq, 144, false) }
func dotQ5_K(n int, row, xq []byte) float32 { return dotQ45K(n, row, xq, 176, true) }

func dotQ6_K(n int, row, xq []byte) float32 {
	var sums [8]float32
	var aux [qkK]int8
	for i := 0; i < n/qkK; i++ {
		x := row[i*210 : i*210+210]
		y := xq[i*292 : i*292+292]
		for k := 0; k < 2; k++ {
			ql := x[64*k : 64*k+64]
			qh := x[128+32*k : 128+32*k+32]
			a := aux[128*k : 128*k+128]
			for l := 0; l < 32; l++ {
				a[l] = int8(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				a[l+32] = int8(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				a[l+64] = int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				a[l+96] = int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			}
		}
		sc := x[192:208]
		var aux32 [8]int32
		q8 := y[4:260]
		for j := 0; j < 16; j++ {
			s := int32(int8(sc[j]))
			for l := 0; l < 16; l++ {
				aux32[l%8] += s * int32(int8(q8[16*j+l])) * int32(aux[16*j+l])
			}
		}
		d := f16(x[208:]) * f32(y)
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
