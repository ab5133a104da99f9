package tokenizer_test

import (
	"fmt"
	"log"

	"tamp/tokenizer"
)

// A tiny SentencePiece vocabulary: control tokens, the byte tokens for
// "é" (0xC3 0xA9), and a few pieces with scores.
func exampleVocab() tokenizer.Vocab {
	const (
		n = tokenizer.TypeNormal
		b = tokenizer.TypeByte
		c = tokenizer.TypeControl
	)
	// DefaultVocab supplies llama.cpp's defaults: BOS 1, EOS 2, UNK 0, add
	// BOS, add a space prefix.
	v := tokenizer.DefaultVocab(tokenizer.ModelSPM, "",
		[]string{"<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", "▁", "c", "a", "f", "▁c", "af", "▁caf"})
	v.Scores = []float32{0, 0, 0, 0, 0, -1, -1, -1, -1, -2, -3, -4}
	v.Types = []tokenizer.TokenType{tokenizer.TypeUnknown, c, c, b, b, n, n, n, n, n, n, n}
	return v
}

func ExampleTokenizer_Encode() {
	tok, err := tokenizer.New(exampleVocab())
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("café", true, false)
	for _, id := range ids {
		fmt.Printf("%d %q\n", id, tok.Text(id))
	}
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// 1 "<s>"
	// 11 "▁caf"
	// 3 "<0xC3>"
	// 4 "<0xA9>"
	// " café"
}

func ExampleDecoder() {
	tok, err := tokenizer.New(exampleVocab())
	if err != nil {
		log.Fatal(err)
	}
	d := tok.NewDecoder()
	d.StripSpaceAfterBOS = true // print as llama2.c does
	for _, id := range []int32{1, 11, 3, 4} {
		fmt.Printf("%q\n", d.Add(id))
	}
	fmt.Printf("%q\n", d.Flush())
	// Output:
	// ""
	// "caf"
	// ""
	// "é"
	// ""
}
