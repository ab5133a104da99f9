package gguf

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"tamp/internal/testdata"
)

// fuzzSeeds are small synthetic files, valid and broken, for FuzzParse.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	seeds = append(seeds, validRaw().encode())
	v2 := validRaw()
	v2.version = 2
	seeds = append(seeds, v2.encode())
	unpadded := validRaw()
	unpadded.data = unpadded.data[:66]
	seeds = append(seeds, unpadded.encode())
	seeds = append(seeds, rawFile{version: 3, kvs: validRaw().kvs, noDataPad: true}.encode())
	aligned := validRaw()
	aligned.kvs = append(aligned.kvs, rawKV{"general.alignment", uint32(TypeUint32), u32v(64)})
	aligned.align = 64
	aligned.tensors[1].off = 64
	aligned.data = append(seq(1, 32), make([]byte, 32)...)
	aligned.data = append(aligned.data, seq(100, 34)...)
	seeds = append(seeds, aligned.encode())

	f := New()
	for _, kv := range allValues() {
		f.Set(kv.Key, kv.Value)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err == nil {
		seeds = append(seeds, buf.Bytes())
	}

	broken := validRaw()
	broken.tensors[1].typ = 77
	seeds = append(seeds, broken.encode())
	broken = validRaw()
	broken.tensors[0].off = 32
	seeds = append(seeds, broken.encode())
	broken = validRaw()
	broken.tensorCount = ptr(1 << 60)
	seeds = append(seeds, broken.encode())
	return seeds
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// survives WriteTo and Parse again unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	for _, name := range realFiles {
		data, err := os.ReadFile(testdata.Path(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			return
		}
		var b1 bytes.Buffer
		if _, err := a.WriteTo(&b1); err != nil {
			t.Fatalf("writing a parsed file: %v", err)
		}
		b, err := Parse(b1.Bytes())
		if err != nil {
			t.Fatalf("parsing what was written: %v", err)
		}
		if err := sameFile(a, b); err != nil {
			t.Fatal(err)
		}
		var b2 bytes.Buffer
		if _, err := b.WriteTo(&b2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatal("writing is not stable: a second round trip changed the bytes")
		}
	})
}

// sameFile compares metadata and tensors. Values are compared through %#v so
// that NaNs compare equal (their bits are covered by the byte comparison).
func sameFile(a, b *File) error {
	if len(a.KV) != len(b.KV) || len(a.Tensors) != len(b.Tensors) || a.Alignment != b.Alignment {
		return fmt.Errorf("%d KVs, %d tensors, alignment %d became %d, %d, %d",
			len(a.KV), len(a.Tensors), a.Alignment, len(b.KV), len(b.Tensors), b.Alignment)
	}
	for i := range a.KV {
		x, y := a.KV[i], b.KV[i]
		if x.Key != y.Key || x.Value.Type != y.Value.Type || fmt.Sprintf("%#v", x.Value.V) != fmt.Sprintf("%#v", y.Value.V) {
			return fmt.Errorf("kv[%d]: %q %#v became %q %#v", i, x.Key, x.Value, y.Key, y.Value)
		}
	}
	for i := range a.Tensors {
		x, y := a.Tensors[i], b.Tensors[i]
		if x.Name != y.Name || x.Type != y.Type || fmt.Sprint(x.Dims) != fmt.Sprint(y.Dims) || !bytes.Equal(x.Data, y.Data) {
			return fmt.Errorf("tensor %d: %q changed", i, x.Name)
		}
	}
	return nil
}
