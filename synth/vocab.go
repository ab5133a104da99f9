package synth

import "fmt"

// The synthetic tokenizer is a SentencePiece-style ("llama") vocabulary of
// exactly the shape's vocabulary size, so that token ids cover the
// embedding and tamp's tokenizer (and llama.cpp's) can encode and decode
// any text with it:
//
//	0        <unk>           unknown
//	1        <s>             control, BOS
//	2        </s>            control, EOS
//	3..258   <0x00>..<0xFF>  byte fallback: any UTF-8 text encodes
//	259..    pieces          normal, score −(index among the pieces)
//
// The pieces are "▁" and the printable ASCII characters, then every string
// of two, three, … lower-case letters, each also with a leading "▁" (the
// SentencePiece word-start mark), shortest first, until the vocabulary is
// full. Every piece's prefixes come before it, so the SentencePiece merge
// can build each one from single characters; earlier pieces score higher
// and merge first. The vocabulary is made-up, not learnt from text: it
// exists so that tokenization, sampling and decoding run end to end on
// random-weight models, not to compress text well.

// Token type ids as GGUF stores them (tokenizer.TokenType).
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokByte    = 6
)

// vocab builds the synthetic vocabulary of n ≥ minVocab tokens.
func vocab(n int) (tokens []string, scores []float32, types []int32) {
	tokens = make([]string, 0, n)
	types = make([]int32, 0, n)
	tokens = append(tokens, "<unk>", "<s>", "</s>")
	types = append(types, tokUnknown, tokControl, tokControl)
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, tokByte)
	}
	special := len(tokens)
	add := func(s string) bool {
		if len(tokens) == n {
			return false
		}
		tokens = append(tokens, s)
		types = append(types, tokNormal)
		return true
	}
	// Single characters: the word mark and printable ASCII but the space,
	// which SentencePiece writes as the mark.
	add("▁")
	for c := byte('!'); c <= '~'; c++ {
		if !add(string(c)) {
			break
		}
	}
	// Strings of letters by length: "▁" + (L-1) letters, then L letters.
	const letters = "abcdefghijklmnopqrstuvwxyz"
	buf := make([]byte, 0, 16)
	var gen func(prefix string, k int) bool // appends every string of k more letters; false when full
	gen = func(prefix string, k int) bool {
		if k == 0 {
			return add(prefix + string(buf))
		}
		for i := range len(letters) {
			buf = append(buf, letters[i])
			ok := gen(prefix, k-1)
			buf = buf[:len(buf)-1]
			if !ok {
				return false
			}
		}
		return true
	}
	for l := 2; len(tokens) < n; l++ {
		if !gen("▁", l-1) || !gen("", l) {
			break
		}
	}
	scores = make([]float32, n)
	for i := special; i < n; i++ {
		scores[i] = -float32(i - special)
	}
	return tokens, scores, types
}
