package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// spmEntry is a hand-written vocabulary entry.
type spmEntry struct {
	text  string
	score float32
	typ   TokenType
}

// spmVocab builds a small SentencePiece vocabulary: <unk>, <s>, </s>, the
// user-defined <|user|>, the 256 byte tokens (ids 4..259), then extra.
func spmVocab(extra ...spmEntry) Vocab {
	v := Vocab{Model: ModelSPM, BOS: 1, EOS: 2, UNK: 0, PAD: NoToken, EOT: NoToken, EOM: NoToken,
		AddBOS: true, AddSpacePrefix: true}
	add := func(e spmEntry) {
		v.Tokens = append(v.Tokens, e.text)
		v.Scores = append(v.Scores, e.score)
		v.Types = append(v.Types, e.typ)
	}
	add(spmEntry{"<unk>", 0, TypeUnknown})
	add(spmEntry{"<s>", 0, TypeControl})
	add(spmEntry{"</s>", 0, TypeControl})
	add(spmEntry{"<|user|>", 0, TypeUserDefined})
	for b := 0; b < 256; b++ {
		add(spmEntry{fmt.Sprintf("<0x%02X>", b), 0, TypeByte})
	}
	for _, e := range extra {
		if e.typ == 0 {
			e.typ = TypeNormal
		}
		add(e)
	}
	return v
}

func mustNew(t testing.TB, v Vocab) *Tokenizer {
	t.Helper()
	tok, err := New(v)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tok
}

// ids maps token texts to ids, failing on unknown texts.
func ids(t testing.TB, tok *Tokenizer, texts ...string) []int32 {
	t.Helper()
	out := []int32{}
	for _, s := range texts {
		id, ok := tok.Lookup(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		out = append(out, id)
	}
	return out
}

func byteID(b byte) string { return fmt.Sprintf("<0x%02X>", b) }

func TestSPMEncode(t *testing.T) {
	base := []spmEntry{{"▁", -1, 0}, {"a", -1, 0}, {"b", -1, 0}, {"c", -1, 0}}
	tests := []struct {
		name   string
		extra  []spmEntry
		text   string
		add    bool
		parse  bool
		expect []string
	}{
		{"single chars", nil, "abc", false, false, []string{"▁", "a", "b", "c"}},
		{"higher score merges first", []spmEntry{{"ab", -2, 0}, {"bc", -1.5, 0}}, "abc", false, false, []string{"▁", "a", "bc"}},
		{"tie goes to the leftmost pair", []spmEntry{{"ab", -2, 0}, {"bc", -2, 0}}, "abc", false, false, []string{"▁", "ab", "c"}},
		{"merges chain", []spmEntry{{"bc", -1.5, 0}, {"abc", -5, 0}, {"▁abc", -6, 0}}, "abc", false, false, []string{"▁abc"}},
		{"spaces become ▁", []spmEntry{{"▁a", -1, 0}}, "a a", false, false, []string{"▁a", "▁a"}},
		{"leading space doubles the prefix", []spmEntry{{"▁▁", -1, 0}}, " a", false, false, []string{"▁▁", "a"}},
		{"byte fallback", nil, "aé", false, false, []string{"▁", "a", byteID(0xC3), byteID(0xA9)}},
		{"invalid UTF-8 as bytes", nil, "a\xff", false, false, []string{"▁", "a", byteID(0xFF)}},
		{"BOS", nil, "a", true, false, []string{"<s>", "▁", "a"}},
		{"empty", nil, "", false, false, []string{}},
		{"empty with BOS", nil, "", true, false, []string{"<s>"}},
		{"control text is plain text without parseSpecial", nil, "<s>", false, false,
			[]string{"▁", byteID('<'), byteID('s'), byteID('>')}},
		{"control text parsed, prefix after it", nil, "a<s>b", false, true, []string{"▁", "a", "<s>", "▁", "b"}},
		{"user-defined always split", nil, "a<|user|>b", false, false, []string{"▁", "a", "<|user|>", "▁", "b"}},
		{"special at start gets no prefix", nil, "<|user|>a", false, false, []string{"<|user|>", "▁", "a"}},
		{"control token in tokens is used by merges", []spmEntry{{"<", -1, 0}, {">", -1, 0}, {"s", -1, 0}, {"<s", -1, 0}}, "<s>", false, false,
			[]string{"▁", "<s>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustNew(t, spmVocab(append(slices.Clone(base), tc.extra...)...))
			got := tok.Encode(tc.text, tc.add, tc.parse)
			if want := ids(t, tok, tc.expect...); !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want %v (%q)", tc.text, got, want, tc.expect)
			}
		})
	}
}

func TestSPMOptions(t *testing.T) {
	v := spmVocab(spmEntry{"▁", -1, 0}, spmEntry{"a", -1, 0})
	v.AddSpacePrefix = false
	v.AddEOS = true
	tok := mustNew(t, v)
	if got, want := tok.Encode("a", true, false), ids(t, tok, "<s>", "a", "</s>"); !slices.Equal(got, want) {
		t.Errorf("no prefix, BOS and EOS: got %v, want %v", got, want)
	}
	if got := tok.Decode(tok.Encode(" a", false, false)); got != " a" {
		t.Errorf("without a space prefix Decode keeps the leading space: got %q", got)
	}

	// Without byte tokens an unknown character becomes one <unk>.
	nb := Vocab{Model: ModelSPM, Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a"},
		Types: []TokenType{TypeUnknown, TypeControl, TypeControl, TypeNormal, TypeNormal},
		BOS:   1, EOS: 2, UNK: 0, PAD: NoToken, EOT: NoToken, EOM: NoToken, AddSpacePrefix: true}
	tok = mustNew(t, nb)
	if got, want := tok.Encode("aéa", false, false), []int32{3, 4, 0, 4}; !slices.Equal(got, want) {
		t.Errorf("unknown character without byte tokens: got %v, want %v", got, want)
	}
}

func TestDecodeSPM(t *testing.T) {
	tok := mustNew(t, spmVocab(spmEntry{"▁", -1, 0}, spmEntry{"▁a", -1, 0}, spmEntry{"b", -1, 0}, spmEntry{"▁▁", -1, 0}))
	bos, eos := tok.BOS(), tok.EOS()
	tests := []struct {
		ids  []int32
		want string
	}{
		{ids(t, tok, "▁a", "b"), "ab"},
		{append([]int32{bos}, ids(t, tok, "▁a", "b")...), " ab"},
		{append(ids(t, tok, "▁▁", "b"), eos), " b"},
		{ids(t, tok, byteID(0xE2), byteID(0x82), byteID(0xAC)), "€"},
		{ids(t, tok, "<|user|>", "<unk>", "b"), "<|user|>b"},
		{[]int32{-1, 1 << 30, 5000}, ""},
	}
	for _, tc := range tests {
		if got := tok.Decode(tc.ids); got != tc.want {
			t.Errorf("Decode(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
	if got := tok.PieceSpecial(bos); got != "<s>" {
		t.Errorf("PieceSpecial(BOS) = %q", got)
	}
	if got := tok.Piece(bos); got != "" {
		t.Errorf("Piece(BOS) = %q, want empty", got)
	}
}

// bpeVocab builds a byte-level BPE vocabulary: the 256 byte characters in
// byte order (so id b is byte b), then one token per merge result.
func bpeVocab(pre string, merges []string, extra ...string) Vocab {
	v := Vocab{Model: ModelBPE, Pre: pre, BOS: NoToken, EOS: NoToken, UNK: NoToken, PAD: NoToken, EOT: NoToken, EOM: NoToken}
	for b := 0; b < 256; b++ {
		v.Tokens = append(v.Tokens, byteEncode[b])
	}
	for _, m := range merges {
		v.Tokens = append(v.Tokens, strings.Replace(m, " ", "", 1))
	}
	v.Tokens = append(v.Tokens, extra...)
	v.Tokens = append(v.Tokens, "<|endoftext|>")
	v.Types = make([]TokenType, len(v.Tokens))
	for i := range v.Types {
		v.Types[i] = TypeNormal
	}
	v.Types[len(v.Types)-1] = TypeControl
	v.EOS = int32(len(v.Tokens) - 1)
	v.BOS = v.EOS
	v.Merges = merges
	return v
}

var testMerges = []string{"Ġ t", "h e", "Ġt he", "l l", "e ll", "ell o"}

func TestBPEEncode(t *testing.T) {
	tests := []struct {
		name, pre, text string
		extra           []string
		parse           bool
		expect          []string
	}{
		{"lower rank first", "gpt-2", "the hello", nil, false, []string{"t", "he", "Ġ", "he", "ll", "o"}},
		{"merge chain", "gpt-2", "ello", nil, false, []string{"ello"}},
		{"tie goes to the leftmost pair", "gpt-2", "lll", nil, false, []string{"ll", "l"}},
		{"space joins the word", "gpt-2", " the", nil, false, []string{"Ġthe"}},
		{"whole-word token without merges is not used by gpt-2", "gpt-2", "ab", []string{"ab"}, false, []string{"a", "b"}},
		{"llama3 uses whole-word tokens", "llama-bpe", "ab", []string{"ab"}, false, []string{"ab"}},
		{"non-ASCII bytes", "gpt-2", "é", nil, false, []string{"Ã", "©"}},
		{"control text stays text", "gpt-2", "<|endoftext|>", nil, false,
			[]string{"<", "|", "e", "n", "d", "o", "f", "t", "e", "x", "t", "|", ">"}},
		{"control text parsed", "gpt-2", "a<|endoftext|>b", nil, true, []string{"a", "<|endoftext|>", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustNew(t, bpeVocab(tc.pre, testMerges, tc.extra...))
			got := tok.Encode(tc.text, false, tc.parse)
			want := ids(t, tok, tc.expect...)
			if !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want %v (%q)", tc.text, got, want, tc.expect)
			}
		})
	}
}

func TestBPEPreNames(t *testing.T) {
	tests := []struct {
		pre, want string
		warn      bool
		bos       bool
	}{
		{"gpt-2", "gpt-2", false, false},
		{"llama-bpe", "llama-bpe", false, true},
		{"qwen2", "qwen2", false, false},
		{"", "default", true, false},
		{"no-such-pre", "gpt-2", true, false},
	}
	for _, tc := range tests {
		v := bpeVocab(tc.pre, testMerges)
		tok := mustNew(t, v)
		if tok.Pre() != tc.want {
			t.Errorf("pre %q: Pre() = %q, want %q", tc.pre, tok.Pre(), tc.want)
		}
		if got := len(tok.Warnings()) > 0; got != tc.warn {
			t.Errorf("pre %q: warnings %q, want some: %v", tc.pre, tok.Warnings(), tc.warn)
		}
		if info, _ := lookupPre(tc.pre); info.addBOS != tc.bos {
			t.Errorf("pre %q: default add_bos %v, want %v", tc.pre, info.addBOS, tc.bos)
		}
	}
}

func TestBPEDecode(t *testing.T) {
	tok := mustNew(t, bpeVocab("gpt-2", testMerges))
	if got := tok.Piece(ids(t, tok, "Ġthe")[0]); got != " the" {
		t.Errorf("Piece(Ġthe) = %q", got)
	}
	// Bytes 0xE2 0x82 0xAC ("€") as three GPT-2 byte characters.
	euro := []int32{0xE2, 0x82, 0xAC}
	if got := tok.Decode(euro); got != "€" {
		t.Errorf("Decode(€ bytes) = %q", got)
	}
	// gpt-2 cleans spaces before punctuation, qwen2 does not.
	text := "a , b"
	if got := tok.Decode(tok.Encode(text, false, false)); got != "a, b" {
		t.Errorf("gpt-2 Decode(Encode(%q)) = %q, want %q", text, got, "a, b")
	}
	q := mustNew(t, bpeVocab("qwen2", testMerges))
	if got := q.Decode(q.Encode(text, false, false)); got != text {
		t.Errorf("qwen2 Decode(Encode(%q)) = %q", text, got)
	}
	// A normal token with a character outside the byte table.
	odd := mustNew(t, bpeVocab("gpt-2", nil, "☃"))
	id, _ := odd.Lookup("☃")
	if got := odd.Piece(id); got != "[UNK_BYTE_0xe29883☃]" {
		t.Errorf("Piece(☃) = %q", got)
	}
}

func TestCleanSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a , b . c ! d ?", "a, b. c! d?"},
		{"it 's we 're they 've I 'm", "it's we're they've I'm"},
		{"do n't , I 'll , she 'd", "do n't, I 'll, she 'd"},
		{"a ' b", "a'b"},
		{"a ' ' b", "a'' b"}, // the NUL llama.cpp leaves stops a second match
		{" ,", ","},
		{"", ""},
		{"x", "x"},
	}
	for _, tc := range tests {
		if got := string(cleanSpaces([]byte(tc.in))); got != tc.want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecoderSplitsCharacters(t *testing.T) {
	tok := mustNew(t, spmVocab(spmEntry{"▁", -1, 0}, spmEntry{"a", -1, 0}))
	seq := ids(t, tok, "a", byteID(0xF0), byteID(0x9F), byteID(0xA6), byteID(0x99), byteID(0xE2), byteID(0x82), byteID(0xAC), "a")
	want := []string{"a", "", "", "", "🦙", "", "", "€", "a"}
	d := tok.NewDecoder()
	for i, id := range seq {
		if got := d.Add(id); got != want[i] {
			t.Errorf("Add #%d = %q, want %q", i, got, want[i])
		}
	}
	if got := d.Flush(); got != "" {
		t.Errorf("Flush = %q, want empty", got)
	}

	// An incomplete character is returned by Flush; invalid bytes pass at once.
	d = tok.NewDecoder()
	if got := d.Add(ids(t, tok, byteID(0xE2))[0]); got != "" {
		t.Errorf("partial lead byte returned %q", got)
	}
	if got := d.Flush(); got != "\xe2" {
		t.Errorf("Flush = %q, want the held byte", got)
	}
	if got := d.Add(ids(t, tok, byteID(0xFF))[0]); got != "\xff" {
		t.Errorf("invalid byte: Add = %q", got)
	}
	if got := d.Add(ids(t, tok, byteID(0xE2))[0]) + d.Add(ids(t, tok, "a")[0]); got != "\xe2a" {
		t.Errorf("broken sequence: got %q", got)
	}

	// Options: special tokens and the llama2.c space rule.
	d = tok.NewDecoder()
	d.Special = true
	d.StripSpaceAfterBOS = true
	got := d.Add(tok.BOS()) + d.Add(ids(t, tok, "▁")[0]) + d.Add(ids(t, tok, "▁")[0]) + d.Flush()
	if got != "<s> " {
		t.Errorf("Special+StripSpaceAfterBOS: got %q, want %q", got, "<s> ")
	}
}

func TestDecoderStoriesByteFallback(t *testing.T) {
	tok := loadGGUF(t, "stories260K.gguf")
	text := "Zoë saw a 🦙 and said “¡olé!” — 日本"
	seq := tok.Encode(text, false, false)
	d := tok.NewDecoder()
	var sb strings.Builder
	held := 0
	for _, id := range seq {
		s := d.Add(id)
		if !utf8.ValidString(s) {
			t.Fatalf("Add(%d) returned invalid UTF-8 %q", id, s)
		}
		if s == "" {
			held++
		}
		sb.WriteString(s)
	}
	sb.WriteString(d.Flush())
	if got := sb.String(); got != " "+text {
		t.Errorf("streamed %q, want %q", got, " "+text)
	}
	if held == 0 {
		t.Errorf("no token was held back; the text should need byte fallback (tokens %v)", seq)
	}
}

func TestNewErrors(t *testing.T) {
	good := func() Vocab { return spmVocab(spmEntry{"▁", -1, 0}) }
	tests := []struct {
		name string
		edit func(v *Vocab)
		want string
	}{
		{"unknown model", func(v *Vocab) { v.Model = "bert" }, `unsupported tokenizer model "bert"`},
		{"no tokens", func(v *Vocab) { v.Tokens, v.Scores, v.Types = nil, nil, nil }, "no tokens"},
		{"scores length", func(v *Vocab) { v.Scores = v.Scores[:3] }, "3 scores"},
		{"types length", func(v *Vocab) { v.Types = v.Types[1:] }, "token types"},
		{"duplicate", func(v *Vocab) { v.Tokens[5] = "<s>" }, "duplicate token"},
		{"BOS range", func(v *Vocab) { v.BOS = int32(len(v.Tokens)) }, "BOS token id"},
		{"negative EOS", func(v *Vocab) { v.EOS = -7 }, "EOS token id -7"},
		{"add BOS without BOS", func(v *Vocab) { v.BOS = NoToken }, "no BOS token"},
		{"add EOS without EOS", func(v *Vocab) { v.EOS, v.AddEOS = NoToken, true }, "no EOS token"},
		{"bad byte token", func(v *Vocab) { v.Tokens[10] = "<0xZZ>" }, "type byte"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := good()
			tc.edit(&v)
			_, err := New(v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Errorf("New(good vocab): %v", err)
	}
}

func TestEmptyTokenRenamed(t *testing.T) {
	v := spmVocab(spmEntry{"", 0, 0}, spmEntry{"a", -1, 0})
	tok := mustNew(t, v)
	id := int32(len(v.Tokens) - 2)
	if got, want := tok.Text(id), fmt.Sprintf("[EMPTY_%d]", id); got != want {
		t.Errorf("Text(empty token) = %q, want %q", got, want)
	}
}

func TestEOG(t *testing.T) {
	v := spmVocab(spmEntry{"<|im_end|>", 0, TypeNormal}, spmEntry{"<|eot_id|>", 0, TypeControl}, spmEntry{"x", -1, 0})
	tok := mustNew(t, v)
	imEnd, _ := tok.Lookup("<|im_end|>")
	eot, _ := tok.Lookup("<|eot_id|>")
	x, _ := tok.Lookup("x")
	for _, tc := range []struct {
		id   int32
		want bool
	}{{tok.EOS(), true}, {imEnd, true}, {eot, true}, {x, false}, {tok.BOS(), false}, {-1, false}} {
		if got := tok.IsEOG(tc.id); got != tc.want {
			t.Errorf("IsEOG(%d %q) = %v, want %v", tc.id, tok.Text(tc.id), got, tc.want)
		}
	}
	if tok.EOT() != min(imEnd, eot) {
		t.Errorf("EOT() = %d, want %d", tok.EOT(), min(imEnd, eot))
	}
	// Recognised end markers become control tokens, as in llama.cpp.
	if tok.Type(imEnd) != TypeControl || tok.Piece(imEnd) != "" {
		t.Errorf("<|im_end|>: type %v, piece %q; want control and empty", tok.Type(imEnd), tok.Piece(imEnd))
	}
}

func TestEOGWorkarounds(t *testing.T) {
	tests := []struct {
		extra []string
		token string
		eog   bool
		typ   TokenType
	}{
		{[]string{"<|end|>"}, "<|end|>", true, TypeControl},
		{[]string{"<|end|>", "<|return|>", "<|call|>"}, "<|end|>", false, TypeUserDefined},
		{[]string{"<|end|>", "<|calls|>", "<|flush|>"}, "<|end|>", false, TypeUserDefined},
		{[]string{"<|tool_response>"}, "</s>", false, TypeNormal},
		{nil, "</s>", true, TypeControl},
	}
	for _, tc := range tests {
		var extra []spmEntry
		for _, s := range tc.extra {
			extra = append(extra, spmEntry{s, 0, TypeNormal})
		}
		tok := mustNew(t, spmVocab(extra...))
		id, _ := tok.Lookup(tc.token)
		if tok.IsEOG(id) != tc.eog || tok.Type(id) != tc.typ {
			t.Errorf("with %q: %s is EOG %v type %v, want %v %v", tc.extra, tc.token, tok.IsEOG(id), tok.Type(id), tc.eog, tc.typ)
		}
	}
}
