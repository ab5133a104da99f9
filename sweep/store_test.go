package sweep

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := Point{Key: "f|Q8_0|full", Weights: "Q8_0", KV: "full", PPL: 3.5, KLD: 0.001, PPLErr: math.NaN(), TotalBytes: 100}
	b := Point{Key: "f|Q4_0|full", Weights: "Q4_0", KV: "full", PPL: 3.7, KLD: 0.01, GenTPS: math.Inf(1), TotalBytes: 50}
	for _, p := range []Point{a, b} {
		if err := s.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(Point{}); err == nil {
		t.Error("a point without a key was stored")
	}
	if !s.Has(a.Key) || s.Has("f|nope|full") {
		t.Error("Has is wrong")
	}
	s.Close()

	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Points()
	if len(got) != 2 || got[0].Key != a.Key || got[1].Key != b.Key {
		t.Fatalf("reopened store holds %+v", got)
	}
	// JSON cannot hold NaN or Inf: they are stored as 0, "not measured".
	if got[0].PPLErr != 0 || got[1].GenTPS != 0 || got[0].PPL != 3.5 {
		t.Errorf("values after reopening: %+v", got)
	}
	rows := readCSV(t, filepath.Join(dir, PointsCSV))
	if len(rows) != 3 || !slices.Equal(rows[0], csvHeader) || rows[1][0] != "Q8_0" || rows[2][0] != "Q4_0" {
		t.Errorf("CSV = %v", rows)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestStoreDropsTornLine(t *testing.T) {
	dir := t.TempDir()
	good := `{"key":"k1","weights":"Q8_0","kv":"full","ppl":3.5}` + "\n"
	torn := `{"key":"k2","weights":"Q4_0","kv":"fu`
	path := filepath.Join(dir, PointsJSONL)
	if err := os.WriteFile(path, []byte(good+torn), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Has("k2") || !s.Has("k1") {
		t.Fatalf("torn point read: %+v", s.Points())
	}
	if err := s.Add(Point{Key: "k3", Weights: "Q4_0", KV: "full"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"k3"`) {
		t.Errorf("file after append:\n%s", data)
	}
}

func TestStoreRejectsCorruptLine(t *testing.T) {
	for _, content := range []string{
		"not json\n" + `{"key":"k1"}` + "\n",
		`{"weights":"Q8_0"}` + "\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, PointsJSONL), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenStore(dir); err == nil {
			s.Close()
			t.Errorf("corrupt store %q opened", content)
		} else if !strings.Contains(err.Error(), "line 1") {
			t.Errorf("error %v does not name the line", err)
		}
	}
}

func TestPareto(t *testing.T) {
	pt := func(name string, mem int64, kld, tps float64) Point {
		return Point{Weights: name, TotalBytes: mem, KLD: kld, GenTPS: tps}
	}
	tests := []struct {
		name        string
		points      []Point
		memory, spd []string
	}{
		{"empty", nil, nil, nil},
		{"one", []Point{pt("a", 10, 0.1, 5)}, []string{"a"}, []string{"a"}},
		{"dominated",
			[]Point{pt("big-good", 100, 0.001, 10), pt("small-bad", 10, 0.5, 50), pt("mid", 50, 0.01, 20), pt("worse-mid", 60, 0.02, 15)},
			[]string{"small-bad", "mid", "big-good"}, []string{"small-bad", "mid", "big-good"}},
		{"ties keep the first",
			[]Point{pt("a", 10, 0.1, 5), pt("b", 10, 0.1, 5), pt("c", 10, 0.05, 0)},
			[]string{"c"}, []string{"a"}},
	}
	names := func(ps []Point, idx []int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, ps[i].Weights)
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.points, ParetoMemory(tt.points)); !slices.Equal(got, tt.memory) {
				t.Errorf("memory front %v, want %v", got, tt.memory)
			}
			if got := names(tt.points, ParetoSpeed(tt.points)); !slices.Equal(got, tt.spd) {
				t.Errorf("speed front %v, want %v", got, tt.spd)
			}
		})
	}
}
