package eval

import (
	"math/rand/v2"
	"testing"
)

// benchRows returns a pair of 32000-token logit rows, a realistic vocabulary.
func benchRows() (p, q []float32) {
	r := rand.New(rand.NewPCG(1, 1))
	p = make([]float32, 32000)
	q = make([]float32, 32000)
	for i := range p {
		p[i] = float32(3 * r.NormFloat64())
		q[i] = p[i] + float32(0.1*r.NormFloat64())
	}
	return p, q
}

func BenchmarkTokenNLL(b *testing.B) {
	p, _ := benchRows()
	for b.Loop() {
		if _, err := TokenNLL(p, 17); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBaseRow(b *testing.B) {
	p, _ := benchRows()
	row := make([]uint16, BaseRowLen(len(p)))
	for b.Loop() {
		if _, err := EncodeBaseRow(row, p, 17); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKLDAdd(b *testing.B) {
	p, q := benchRows()
	row := make([]uint16, BaseRowLen(len(p)))
	if _, err := EncodeBaseRow(row, p, 17); err != nil {
		b.Fatal(err)
	}
	var acc KLDAccumulator
	b.ReportAllocs()
	for b.Loop() {
		if _, err := acc.Add(q, row, 17); err != nil {
			b.Fatal(err)
		}
	}
}
