package model

import (
	"math"
	"testing"

	"tamp/gguf"
)

// angles returns the rotation angle of each pair at pos from the session's table.
func angles(s *Session, pos int) []float64 {
	s.ropeTable(pos)
	out := make([]float64, len(s.rope)/2)
	for i := range out {
		out[i] = math.Atan2(float64(s.rope[2*i+1]), float64(s.rope[2*i]))
	}
	return out
}

func wrap(a float64) float64 { return math.Remainder(a, 2*math.Pi) }

func ropeSession(c Config, freqs []float32) *Session {
	m := &Model{Config: c, ropeFreqs: freqs}
	return &Session{m: m, rope: make([]float32, c.RopeDim)}
}

func TestRopeAngles(t *testing.T) {
	c := Config{RopeBase: 10000, RopeDim: 16, RopeScale: 1}
	plain := ropeSession(c, nil)
	for _, pos := range []int{0, 1, 7, 100} {
		for i, got := range angles(plain, pos) {
			want := float64(pos) * math.Pow(10000, -2*float64(i)/16)
			if d := math.Abs(wrap(got - want)); d > 1e-5*math.Max(1, float64(pos)) {
				t.Errorf("pos %d pair %d: angle %.6f, want %.6f", pos, i, got, want)
			}
		}
	}
	// Linear scaling by 4: position 40 turns as far as position 10 unscaled.
	c.RopeScale = 0.25
	scaled := ropeSession(c, nil)
	a, b := angles(scaled, 40), angles(plain, 10)
	for i := range a {
		if d := math.Abs(wrap(a[i] - b[i])); d > 1e-5 {
			t.Errorf("linear scale: pair %d angle %.6f, want %.6f", i, a[i], b[i])
		}
	}
	// Frequency factors divide each pair's angle.
	c.RopeScale = 1
	freqs := make([]float32, 8)
	for i := range freqs {
		freqs[i] = float32(1 + i)
	}
	fs := ropeSession(c, freqs)
	got := angles(fs, 9)
	for i := range got {
		want := 9 * math.Pow(10000, -2*float64(i)/16) / float64(freqs[i])
		if d := math.Abs(wrap(got[i] - want)); d > 1e-5 {
			t.Errorf("freq factor: pair %d angle %.6f, want %.6f", i, got[i], want)
		}
	}
}

// TestLlama3Factors checks the factors computed from rope.scaling metadata
// against Llama 3.1's published rule: wavelengths shorter than
// original_context/high_freq_factor keep their frequency, longer than
// original_context/low_freq_factor are divided by factor, and the band between
// is interpolated smoothly.
func TestLlama3Factors(t *testing.T) {
	f := gguf.New()
	f.Set("general.architecture", gguf.String("llama"))
	f.Set("llama.rope.scaling.type", gguf.String("llama3"))
	f.Set("llama.rope.scaling.factor", gguf.Float32(8))
	f.Set("llama.rope.scaling.low_freq_factor", gguf.Float32(1))
	f.Set("llama.rope.scaling.high_freq_factor", gguf.Float32(4))
	f.Set("llama.rope.scaling.original_context_length", gguf.Uint32(8192))
	m := &Model{Config: Config{Arch: "llama", RopeBase: 500000, RopeDim: 128}}
	if err := m.bindRopeFreqs(f); err != nil {
		t.Fatal(err)
	}
	if len(m.ropeFreqs) != 64 {
		t.Fatalf("%d factors, want 64", len(m.ropeFreqs))
	}
	var kept, divided, between int
	for i, got := range m.ropeFreqs {
		wave := 2 * math.Pi / math.Pow(500000, -2*float64(i)/128)
		var want float64
		switch {
		case wave < 8192/4.0:
			want, kept = 1, kept+1
		case wave > 8192/1.0:
			want, divided = 8, divided+1
		default:
			smooth := (8192/wave - 1) / (4 - 1)
			want, between = 1/((1-smooth)/8+smooth), between+1
		}
		if math.Abs(float64(got)-want) > 1e-4*want {
			t.Errorf("pair %d (wavelength %.0f): factor %.5f, want %.5f", i, wave, got, want)
		}
	}
	if kept == 0 || divided == 0 || between == 0 {
		t.Errorf("test does not cover all three bands: %d kept, %d divided, %d between", kept, divided, between)
	}
	if m.ropeFreqs[0] != 1 || m.ropeFreqs[63] != 8 {
		t.Errorf("ends: %v ... %v", m.ropeFreqs[0], m.ropeFreqs[63])
	}
}
