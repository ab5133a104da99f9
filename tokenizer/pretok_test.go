package tokenizer

import (
	"slices"
	"testing"
)

// words runs the pre-tokenizer of kind pre and returns its pieces as text.
func words(pre preKind, text string) []string {
	t := &Tokenizer{pre: pre}
	var s splitter
	var out []string
	start := 0
	for _, n := range t.preSplit(text, &s) {
		var b []byte
		for _, r := range s.cpts[start : start+n] {
			b = appendCpt(b, r)
		}
		out = append(out, string(b))
		start += n
	}
	return out
}

func TestPreTokenizers(t *testing.T) {
	tests := []struct {
		pre  preKind
		text string
		want []string
	}{
		// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
		{preGPT2, "Hello world", []string{"Hello", " world"}},
		{preGPT2, "   Hello", []string{"  ", " Hello"}},
		{preGPT2, "I'm we've", []string{"I", "'m", " we", "'ve"}},
		{preGPT2, "I'M", []string{"I", "'", "M"}},
		{preGPT2, "3333 x", []string{"3333", " x"}},
		{preGPT2, "hi!! (", []string{"hi", "!!", " ("}},
		{preGPT2, "\n =", []string{"\n", " ="}},
		{preGPT2, "a  b", []string{"a", " ", " b"}},
		{preGPT2, "a   ", []string{"a", "   "}},
		{preGPT2, "a\t\tb", []string{"a", "\t", "\t", "b"}},
		{preGPT2, "нещо на", []string{"нещо", " на"}},
		{preGPT2, "x\u00a0y", []string{"x", "\u00a0", "y"}},
		{preGPT2, "", nil},

		// Llama 3. The expectations follow llama.cpp's own list for
		// llama-bpe in test-tokenizer-0.cpp: "   Hello" is [256 "  ", 22691
		// " Hello"], "3333" is [8765 "333", 18 "3"], "\t\n" one token, "' era"
		// is ["'", " era"], and "y'all" gives " y", "'all".
		{preLlama3, "   Hello", []string{"  ", " Hello"}},
		{preLlama3, "3333", []string{"333", "3"}},
		{preLlama3, "33333333", []string{"333", "333", "33"}},
		{preLlama3, "\t\n", []string{"\t\n"}},
		{preLlama3, "' era", []string{"'", " era"}},
		{preLlama3, "Hello, y'all! How", []string{"Hello", ",", " y", "'all", "!", " How"}},
		{preLlama3, "I'M", []string{"I", "'M"}},
		{preLlama3, ",hello", []string{",hello"}},
		{preLlama3, "我想在apple工作1314151天～", []string{"我想在apple工作", "131", "415", "1", "天", "～"}},
		{preLlama3, "a (\n\nb", []string{"a", " (\n\n", "b"}},
		{preLlama3, "  \n  x", []string{"  \n", " ", " x"}},
		{preLlama3, "x \n", []string{"x", " \n"}},
		{preLlama3, "x  ", []string{"x", "  "}},

		// Qwen 2: as Llama 3 with single digits.
		{preQwen2, "3333", []string{"3", "3", "3", "3"}},
		{preQwen2, "a1b", []string{"a", "1", "b"}},
		{preQwen2, "Hello, y'all!", []string{"Hello", ",", " y", "'all", "!"}},

		// StarCoder: each digit alone, then GPT-2.
		{preStarCoder, "x 123", []string{"x", " ", "1", "2", "3"}},

		// llama.cpp's default: punctuation runs, GPT-2, digit runs, digit triples.
		{preDefault, "a+b=12345", []string{"a", "+", "b", "=", "123", "45"}},
		{preDefault, "don't stop", []string{"don", "'", "t", " stop"}},
		{preDefault, "x 1234567", []string{"x", " ", "123", "456", "7"}},
	}
	for _, tc := range tests {
		if got := words(tc.pre, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("pre %d, %q:\n got %q\nwant %q", tc.pre, tc.text, got, tc.want)
		}
	}
}

// TestPreTokenizerCoverage checks that every pre-tokenizer accounts for every
// code point exactly once, whatever the input.
func TestPreTokenizerCoverage(t *testing.T) {
	inputs := []string{"", " ", "a", "'", "'s", " 's", "\r\n\r\n ", "x\xffy\xe2\x82", "  \t 3.14 ¿qué? 🦙🦙 a'LL 'd"}
	for _, pre := range []preKind{preDefault, preGPT2, preLlama3, preQwen2, preStarCoder} {
		for _, in := range inputs {
			tk := &Tokenizer{pre: pre}
			var s splitter
			total := 0
			for _, n := range tk.preSplit(in, &s) {
				if n <= 0 {
					t.Errorf("pre %d, %q: empty piece", pre, in)
				}
				total += n
			}
			if total != len(s.cpts) {
				t.Errorf("pre %d, %q: pieces cover %d of %d code points", pre, in, total, len(s.cpts))
			}
		}
	}
}

func TestDecodeCpts(t *testing.T) {
	tests := []struct {
		in   string
		want []rune
	}{
		{"aé€🦙", []rune{'a', 'é', '€', '🦙'}},
		{"\xff", []rune{0xFFFD}},
		{"\xc3", []rune{0xFFFD}},
		{"\xe2\x82x", []rune{0xFFFD, 0xFFFD, 'x'}},
		{"\xc0\x80", []rune{0}},              // overlong, accepted like llama.cpp
		{"\xed\xa0\x80", []rune{0xD800}},     // surrogate, accepted like llama.cpp
		{"\xf7\xbf\xbf\xbf", []rune{0xFFFD}}, // beyond U+10FFFF
	}
	for _, tc := range tests {
		if got := decodeCpts(tc.in, nil); !slices.Equal(got, tc.want) {
			t.Errorf("decodeCpts(%q) = %U, want %U", tc.in, got, tc.want)
		}
	}
	if got := string(appendCpt(nil, 0xD800)); got != "\xed\xa0\x80" {
		t.Errorf("appendCpt(U+D800) = %q", got)
	}
}
