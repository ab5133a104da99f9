package sweep

import (
	"strings"
	"testing"
)

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		labels string
	}{
		{0, 2600, "0,500,1000,1500,2000,2500"},
		{270, 740, "300,400,500,600,700"},
		{0.05, 0.33, "0.05,0.10,0.15,0.20,0.25,0.30"},
		{5, 5, ""},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, ",") != tt.labels {
			t.Errorf("ticks on [%g, %g]: %v, want %s", tt.lo, tt.hi, got, tt.labels)
		}
	}
	var decades []string
	for _, tk := range (decadeTicks{}).Ticks(3e-4, 0.2) {
		if tk.Label != "" {
			decades = append(decades, tk.Label)
		}
	}
	if strings.Join(decades, ",") != "0.001,0.01,0.1" {
		t.Errorf("decade ticks %v", decades)
	}
}
