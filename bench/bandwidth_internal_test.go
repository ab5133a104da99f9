package bench

import "testing"

func TestParseCacheSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"32768K\n", 32 << 20},
		{"1M", 1 << 20},
		{"2G", 2 << 30},
		{"512", 512},
		{"", 0},
		{"12Q", 0},
		{"-4K", 0},
	}
	for _, tc := range cases {
		if got := parseCacheSize(tc.in); got != tc.want {
			t.Errorf("parseCacheSize(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{1, 2, 10}, 2},
		{[]float64{1, 2, 4, 10}, 3},
	}
	for _, tc := range cases {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}
