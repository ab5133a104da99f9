package eval

import (
	"bytes"
	"context"
	"testing"
)

// FuzzReadBase feeds arbitrary bytes to ReadBase, reads every chunk of
// whatever it accepts and compares rows through a KLDAccumulator: nothing may
// panic, and a file accepted by random access must be readable in full.
func FuzzReadBase(f *testing.F) {
	for _, tc := range []struct{ vocab, ctx, n int }{{4, 6, 18}, {5, 3, 9}, {2, 4, 8}} {
		var buf bytes.Buffer
		_, err := Perplexity(context.Background(), newBigram(tc.vocab, 1), randomTokens(tc.n, tc.vocab, 2),
			Options{Ctx: tc.ctx, SaveBase: &buf})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()-3])
		f.Add(buf.Bytes()[:25])
	}
	f.Add([]byte("_logits_"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, seq := range []bool{false, true} {
			var b *Base
			var err error
			if seq {
				b, err = ReadBase(seqReader{bytes.NewReader(data)})
			} else {
				b, err = ReadBase(bytes.NewReader(data))
			}
			if err != nil {
				continue
			}
			if len(b.Tokens) != b.Ctx*b.Chunks || b.Ctx < 3 || b.Vocab < 1 {
				t.Fatalf("accepted inconsistent base: ctx %d vocab %d chunks %d tokens %d", b.Ctx, b.Vocab, b.Chunks, len(b.Tokens))
			}
			if int64(b.RowsPerChunk())*int64(b.RowLen()) > 1<<20 {
				continue // a sequential source may promise more than the fuzzer can supply
			}
			logits := make([]float32, b.Vocab)
			var acc KLDAccumulator
			var rows []uint16
			for c := range b.Chunks {
				rows, err = b.ReadChunk(c, rows)
				if err != nil {
					if !seq {
						t.Fatalf("random-access base accepted but chunk %d unreadable: %v", c, err)
					}
					break
				}
				nv := b.RowLen()
				for r := range b.RowsPerChunk() {
					_, _ = acc.Add(logits, rows[r*nv:(r+1)*nv], b.Tokens[c*b.Ctx+b.Ctx/2+r+1])
				}
			}
			_ = acc.Stats()
		}
	})
}
