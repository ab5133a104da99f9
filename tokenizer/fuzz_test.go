package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncodeDecode encodes arbitrary bytes with the stories260K SentencePiece
// vocabulary and with small BPE vocabularies, with every flag combination.
// Nothing may panic and every id must be in range. Where decoding is exact it
// must give the text back:
//
//   - SPM (stories260K has all 256 byte tokens and "▁"): for valid UTF-8 s,
//     Decode(Encode(s, false, false)) == strings.ReplaceAll(s, "▁", " "),
//     since the space prefix is dropped again and a literal "▁" in the text
//     is indistinguishable from an escaped space. With BOS
//     (Encode(s, true, false)) the result is " " + that, as llama.cpp keeps
//     the prefix after BOS; the empty string stays empty.
//   - BPE with the Qwen 2 pre-tokenizer (no space clean-up): for valid UTF-8 s,
//     Decode(Encode(s, false, false)) == s, as every byte has a token.
//   - The streaming decoder returns valid UTF-8 from every Add when the
//     pieces are valid UTF-8 overall, and its output joined equals the
//     pieces joined.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", " ", "Zoo", "Once upon a time, there was a little dog named Max.",
		"héllo 🦙 “quoted” — 日本語", "  two  spaces \n\n new\tlines ", "<s>a</s><unk>", "▁x▁", "I'm 3333 x's",
		"\xff\xfe\xe2\x82", "a\x00b", "\u00a0\u2000\u3000", "<|endoftext|>hello"} {
		f.Add(s)
	}
	spm := loadGGUF(f, "stories260K.gguf")
	bpeQwen := mustNew(f, bpeVocab("qwen2", testMerges))
	bpeGPT2 := mustNew(f, bpeVocab("gpt-2", testMerges))
	bpeLlama := mustNew(f, bpeVocab("llama-bpe", testMerges, "hello"))
	bpeDefault := mustNew(f, bpeVocab("default", testMerges))
	all := []*Tokenizer{spm, bpeQwen, bpeGPT2, bpeLlama, bpeDefault}

	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range all {
			for _, add := range []bool{false, true} {
				for _, parse := range []bool{false, true} {
					ids := tok.Encode(s, add, parse)
					for _, id := range ids {
						if id < 0 || int(id) >= tok.VocabSize() {
							t.Fatalf("%s/%s: Encode(%q) gave id %d outside the vocabulary", tok.Model(), tok.Pre(), s, id)
						}
					}
					checkStream(t, tok, ids)
				}
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		want := strings.ReplaceAll(s, "▁", " ")
		if got := spm.Decode(spm.Encode(s, false, false)); got != want {
			t.Errorf("SPM: Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		if s != "" {
			want = " " + want
		}
		if got := spm.Decode(spm.Encode(s, true, false)); got != want {
			t.Errorf("SPM with BOS: Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		if got := bpeQwen.Decode(bpeQwen.Encode(s, false, false)); got != s {
			t.Errorf("BPE qwen2: Decode(Encode(%q)) = %q", s, got)
		}
	})
}

// checkStream decodes ids one at a time and compares with the pieces.
func checkStream(t *testing.T, tok *Tokenizer, ids []int32) {
	t.Helper()
	d := tok.NewDecoder()
	var streamed, joined strings.Builder
	var chunks []string
	for _, id := range ids {
		s := d.Add(id)
		chunks = append(chunks, s)
		streamed.WriteString(s)
		joined.WriteString(tok.Piece(id))
	}
	streamed.WriteString(d.Flush())
	if streamed.String() != joined.String() {
		t.Fatalf("stream %q != pieces %q", streamed.String(), joined.String())
	}
	if utf8.ValidString(joined.String()) {
		for _, c := range chunks {
			if !utf8.ValidString(c) {
				t.Fatalf("Add returned invalid UTF-8 %q from valid pieces %q", c, joined.String())
			}
		}
	}
}
