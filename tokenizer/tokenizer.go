// Package tokenizer turns text into token ids and back, exactly as llama.cpp's
// tokenizer (llama-vocab.cpp) does for the two vocabulary kinds tamp supports:
//
//   - SentencePiece-style vocabularies (GGUF tokenizer.ggml.model = "llama"):
//     spaces become "▁" (U+2581), one space is prepended to the text, pairs of
//     adjacent symbols are merged by score, and characters with no token fall
//     back to <0xXX> byte tokens.
//   - Byte-level BPE vocabularies (tokenizer.ggml.model = "gpt2"): the text is
//     split by a pre-tokenizer chosen by tokenizer.ggml.pre, every byte is
//     mapped to a printable character (GPT-2's byte↔unicode table), and merges
//     are applied by rank.
//
// Control and user-defined token strings inside the text are recognised the
// way llama.cpp's tokenizer_st_partition does it. Decoding is available per
// token (Piece), for a whole sequence (Decode) and as a stream that never
// splits a multi-byte UTF-8 character (Decoder).
package tokenizer

import (
	"fmt"
	"sort"
	"strings"
)

// TokenType is the kind of a vocabulary entry, as stored in the GGUF array
// tokenizer.ggml.token_type.
type TokenType int32

// Token types, numbered as in llama.cpp's llama_token_type.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3
	TypeUserDefined TokenType = 4
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6
)

// Model names accepted in Vocab.Model (the GGUF tokenizer.ggml.model values).
const (
	ModelSPM = "llama" // SentencePiece-style
	ModelBPE = "gpt2"  // byte-level BPE
)

// NoToken marks an absent special token id.
const NoToken int32 = -1

// attr is a bit set of token attributes, following llama.cpp's llama_token_attr.
type attr uint16

const (
	attrUndefined attr = 0
	attrUnknown   attr = 1 << 0
	attrUnused    attr = 1 << 1
	attrNormal    attr = 1 << 2
	attrControl   attr = 1 << 3
	attrUser      attr = 1 << 4
	attrByte      attr = 1 << 5
)

func attrOf(t TokenType) attr {
	switch t {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUser
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	}
	return attrUndefined
}

// Vocab is the plain description of a vocabulary from which New builds a
// Tokenizer. FromGGUF fills one from GGUF metadata; other loaders (llama2.c's
// tokenizer.bin, tests) should start from DefaultVocab, which sets llama.cpp's
// defaults and marks absent special tokens with NoToken. New takes every
// field as given, except where noted.
type Vocab struct {
	// Model is ModelSPM ("llama") or ModelBPE ("gpt2").
	Model string
	// Pre names the BPE pre-tokenizer (tokenizer.ggml.pre); ignored for SPM.
	// "" and "default" select llama.cpp's default splitting; see New for the
	// names understood and what happens to others.
	Pre string
	// Tokens holds the text of every token, indexed by id.
	Tokens []string
	// Scores holds the SPM merge score of every token; nil means all zero.
	Scores []float32
	// Types holds the type of every token; nil means all TypeNormal.
	Types []TokenType
	// Merges holds the BPE merge rules "left right", highest priority first.
	Merges []string

	// Special token ids; NoToken when absent.
	BOS, EOS, UNK, PAD, EOT, EOM int32

	// AddBOS and AddEOS make Encode with addSpecial put BOS first / EOS last.
	AddBOS, AddEOS bool
	// AddSpacePrefix makes SPM encoding prepend one space to the text (and to
	// every text run that follows a special token), as SentencePiece's
	// add_dummy_prefix does.
	AddSpacePrefix bool
}

type kind uint8

const (
	kindSPM kind = iota
	kindBPE
)

// Tokenizer encodes and decodes text for one vocabulary. It is immutable after
// construction and safe for concurrent use.
type Tokenizer struct {
	model  string
	kind   kind
	pre    preKind
	preTag string

	tokens []string
	scores []float32
	attrs  []attr
	index  map[string]int32

	ranks   map[mergePair]int32 // BPE merge ranks
	byteTok [256]int32          // token for each raw byte, NoToken if none

	bos, eos, unk, pad, eot, eom int32
	eog                          map[int32]bool

	addBOS, addEOS, addSpacePrefix bool
	cleanSpaces, ignoreMerges      bool

	special []int32  // control/user-defined/unknown ids, longest text first
	pieces  []string // Piece of every id

	warnings []string
}

type mergePair struct{ left, right string }

// New builds a Tokenizer from v. It fails when the vocabulary is inconsistent:
// unknown model, array lengths that differ from the token count, duplicate
// token texts, special ids out of range, byte tokens that are not "<0xXX>",
// or AddBOS/AddEOS without the matching id.
//
// For BPE, v.Pre selects the pre-tokenizer as llama.cpp does. Understood are
// "default" (also ""), the GPT-2 family ("gpt-2", "phi-2", "mpt", "olmo", …),
// the Llama 3 family ("llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral",
// …, which also skip merges for words that are whole tokens), "dbrx",
// "smaug-bpe", "chatglm-bpe"/"glm4", the Qwen 2 family ("qwen2",
// "deepseek-r1-qwen", "stablelm2", "megrez") and the StarCoder family
// ("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
// "minerva-7b"). Any other name falls back to the GPT-2 pre-tokenizer and
// records a message in Warnings: llama.cpp refuses such files, tamp tokenizes
// them approximately instead.
func New(v Vocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: vocabulary has no tokens")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d tokens, more than int32 ids can address", n)
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	t := &Tokenizer{
		model:  v.Model,
		tokens: make([]string, n),
		scores: make([]float32, n),
		attrs:  make([]attr, n),
		index:  make(map[string]int32, n),
		bos:    v.BOS, eos: v.EOS, unk: v.UNK, pad: v.PAD, eot: v.EOT, eom: v.EOM,
		addBOS: v.AddBOS, addEOS: v.AddEOS,
	}
	switch v.Model {
	case ModelSPM:
		t.kind = kindSPM
		t.addSpacePrefix = v.AddSpacePrefix
	case ModelBPE:
		t.kind = kindBPE
		t.addSpacePrefix = v.AddSpacePrefix
		t.cleanSpaces = true
		t.setPre(v.Pre)
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (supported: %q for SentencePiece, %q for byte-level BPE)", v.Model, ModelSPM, ModelBPE)
	}

	for i, s := range v.Tokens {
		if s == "" {
			// llama.cpp renames empty tokens so the text→id map stays one-to-one.
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if j, dup := t.index[s]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q at ids %d and %d", s, j, i)
		}
		t.index[s] = int32(i)
		t.tokens[i] = s
		if v.Scores != nil {
			t.scores[i] = v.Scores[i]
		}
		t.attrs[i] = attrNormal
		if v.Types != nil {
			t.attrs[i] = attrOf(v.Types[i])
		}
		if t.attrs[i]&attrByte != 0 {
			if _, ok := parseByteToken(s); !ok {
				return nil, fmt.Errorf("tokenizer: token %d has type byte but its text %q is not of the form <0xXX>", i, s)
			}
		}
	}

	for _, sp := range []struct {
		name string
		id   int32
	}{{"BOS", t.bos}, {"EOS", t.eos}, {"UNK", t.unk}, {"PAD", t.pad}, {"EOT", t.eot}, {"EOM", t.eom}} {
		if sp.id != NoToken && (sp.id < 0 || int(sp.id) >= n) {
			return nil, fmt.Errorf("tokenizer: %s token id %d out of range [0, %d)", sp.name, sp.id, n)
		}
	}
	if t.addBOS && t.bos == NoToken {
		return nil, fmt.Errorf("tokenizer: BOS is to be added but the vocabulary has no BOS token")
	}
	if t.addEOS && t.eos == NoToken {
		return nil, fmt.Errorf("tokenizer: EOS is to be added but the vocabulary has no EOS token")
	}

	if t.kind == kindBPE {
		t.ranks = make(map[mergePair]int32, len(v.Merges))
		for i, m := range v.Merges {
			// As llama.cpp: split at the first space after the first byte, so a
			// merge may start with a space; a rule without one is kept as an
			// empty pair that can never match.
			var p mergePair
			if len(m) > 1 {
				if k := strings.IndexByte(m[1:], ' '); k >= 0 {
					p = mergePair{m[:k+1], m[k+2:]}
				}
			}
			if _, seen := t.ranks[p]; !seen {
				t.ranks[p] = int32(i)
			}
		}
	}

	t.initBytes()
	t.initEOG()
	t.initSpecial()
	t.pieces = make([]string, n)
	for i := range t.pieces {
		t.pieces[i] = t.piece(int32(i), false)
	}
	return t, nil
}

// initBytes finds the token for every raw byte: "<0xXX>" (or the byte itself)
// for SPM, the GPT-2 byte character for BPE.
func (t *Tokenizer) initBytes() {
	const hex = "0123456789ABCDEF"
	for b := 0; b < 256; b++ {
		t.byteTok[b] = NoToken
		var keys []string
		if t.kind == kindSPM {
			keys = []string{"<0x" + hex[b>>4:b>>4+1] + hex[b&15:b&15+1] + ">", string([]byte{byte(b)})}
		} else {
			keys = []string{byteEncode[b]}
		}
		for _, k := range keys {
			if id, ok := t.index[k]; ok {
				t.byteTok[b] = id
				break
			}
		}
	}
}

// End-of-generation detection follows llama.cpp, which recognises these token
// texts because converters do not record them in the metadata.
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomTexts = []string{"<|eom_id|>"}
	eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]",
		"[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
		"<｜end▁of▁sentence｜>", "[e~["}
)

func (t *Tokenizer) initEOG() {
	find := func(texts []string) int32 {
		// llama.cpp walks an unordered map, so when several texts are present
		// the choice is arbitrary there; taking the lowest id is deterministic.
		best := NoToken
		for _, s := range texts {
			if id, ok := t.index[s]; ok && (best == NoToken || id < best) {
				best = id
			}
		}
		return best
	}
	if t.eot == NoToken {
		t.eot = find(eotTexts)
		if t.eot != NoToken {
			t.attrs[t.eot] |= attrControl
		}
	}
	if t.eom == NoToken {
		t.eom = find(eomTexts)
		if t.eom != NoToken {
			t.attrs[t.eom] |= attrControl
		}
	}
	t.eog = make(map[int32]bool)
	for _, s := range eogTexts {
		if id, ok := t.index[s]; ok {
			t.eog[id] = true
			t.attrs[id] |= attrControl
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id != NoToken {
			t.eog[id] = true
		}
	}
	// llama.cpp's workarounds: with gpt-oss's "<|return|>"/"<|call|>" (or
	// solar-open's "<|calls|>"/"<|flush|>"), "<|end|>" ends a message, not
	// the generation; with Gemma 4's "<|tool_response>", "</s>" is text.
	has := func(s string) bool { id, ok := t.index[s]; return ok && t.eog[id] }
	call := has("<|call|>") || has("<|calls|>")
	if id, ok := t.index["<|end|>"]; ok && t.eog[id] && call && (has("<|return|>") || has("<|flush|>")) {
		delete(t.eog, id)
		t.attrs[id] = attrUser
	}
	if id, ok := t.index["</s>"]; ok && t.eog[id] && has("<|tool_response>") {
		delete(t.eog, id)
		t.attrs[id] = attrNormal
	}
}

func (t *Tokenizer) initSpecial() {
	for id, a := range t.attrs {
		if a&(attrControl|attrUser|attrUnknown) != 0 {
			t.special = append(t.special, int32(id))
		}
	}
	// Longest first, so a special token that contains another wins; ties by
	// id keep the order deterministic (llama.cpp's std::sort leaves it open).
	sort.SliceStable(t.special, func(i, j int) bool {
		return len(t.tokens[t.special[i]]) > len(t.tokens[t.special[j]])
	})
}

// Model reports the vocabulary kind: "llama" (SentencePiece) or "gpt2" (BPE).
func (t *Tokenizer) Model() string { return t.model }

// Pre reports the BPE pre-tokenizer in use ("" for SentencePiece).
func (t *Tokenizer) Pre() string { return t.preTag }

// VocabSize reports the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token id, or NoToken.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token id, or NoToken.
func (t *Tokenizer) EOS() int32 { return t.eos }

// UNK returns the unknown token id, or NoToken.
func (t *Tokenizer) UNK() int32 { return t.unk }

// PAD returns the padding token id, or NoToken.
func (t *Tokenizer) PAD() int32 { return t.pad }

// EOT returns the end-of-turn token id (from metadata or recognised by its
// text, as llama.cpp does), or NoToken.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial puts BOS first.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial puts EOS last.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation: EOS, EOT, EOM and the tokens
// llama.cpp recognises by text ("<|im_end|>", "<|eot_id|>", …).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// Text returns the vocabulary text of id unchanged ("▁the", "<0x0A>", "Ġthe"),
// or "" when id is out of range.
func (t *Tokenizer) Text(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Score returns the SentencePiece score of id, or 0 when id is out of range.
func (t *Tokenizer) Score(id int32) float32 {
	if id < 0 || int(id) >= len(t.tokens) {
		return 0
	}
	return t.scores[id]
}

// Type returns the type of id, or TypeUndefined when id is out of range.
// Tokens that llama.cpp promotes to control tokens (end-of-turn markers
// recognised by text) report TypeControl.
func (t *Tokenizer) Type(id int32) TokenType {
	if id < 0 || int(id) >= len(t.tokens) {
		return TypeUndefined
	}
	a := t.attrs[id]
	switch {
	case a&attrControl != 0:
		return TypeControl
	case a&attrUnknown != 0:
		return TypeUnknown
	case a&attrUser != 0:
		return TypeUserDefined
	case a&attrByte != 0:
		return TypeByte
	case a&attrUnused != 0:
		return TypeUnused
	case a&attrNormal != 0:
		return TypeNormal
	}
	return TypeUndefined
}

// Lookup returns the id of the token whose vocabulary text is s.
func (t *Tokenizer) Lookup(s string) (int32, bool) {
	id, ok := t.index[s]
	return id, ok
}

// Warnings returns the non-fatal problems found while building the tokenizer,
// such as an unknown BPE pre-tokenizer name.
func (t *Tokenizer) Warnings() []string { return append([]string(nil), t.warnings...) }

// fragment is a piece of the input: raw text text[start:end], or a special
// token when tok != NoToken.
type fragment struct {
	tok        int32
	start, end int
}

// partition splits text around special-token strings, as llama.cpp's
// tokenizer_st_partition: user-defined tokens always, control and unknown
// tokens only when parseSpecial is set.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{tok: NoToken, start: 0, end: len(text)}}
	var next []fragment
	for _, id := range t.special {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		s := t.tokens[id]
		next = next[:0]
		for _, f := range frags {
			if f.tok != NoToken {
				next = append(next, f)
				continue
			}
			start := f.start
			for start < f.end {
				k := strings.Index(text[start:f.end], s)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{tok: NoToken, start: start, end: start + k})
				}
				next = append(next, fragment{tok: id})
				start += k + len(s)
			}
			if start < f.end {
				next = append(next, fragment{tok: NoToken, start: start, end: f.end})
			}
		}
		frags, next = next, frags
	}
	return frags
}

// Encode converts text to token ids as llama.cpp's llama_tokenize does.
// addSpecial puts BOS first and EOS last when the vocabulary asks for them
// (AddBOS, AddEOS). parseSpecial lets control-token strings in the text (such
// as "<s>" or "<|im_start|>") become their tokens; user-defined tokens are
// always recognised.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	frags := t.partition(text, parseSpecial)
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	switch t.kind {
	case kindSPM:
		prevSpecial := true // the first text run gets the space prefix
		var sb strings.Builder
		for _, f := range frags {
			if f.tok != NoToken {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			sb.Reset()
			if t.addSpacePrefix && prevSpecial {
				sb.WriteString(spaceMark)
			}
			escapeSpaces(&sb, text[f.start:f.end])
			out = t.encodeSPM(sb.String(), out)
			prevSpecial = false
		}
	case kindBPE:
		for _, f := range frags {
			if f.tok != NoToken {
				out = append(out, f.tok)
				continue
			}
			out = t.encodeBPE(text[f.start:f.end], out)
		}
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}

// spaceMark is SentencePiece's visible space, U+2581.
const spaceMark = "\u2581"

func escapeSpaces(sb *strings.Builder, s string) {
	for {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			sb.WriteString(s)
			return
		}
		sb.WriteString(s[:i])
		sb.WriteString(spaceMark)
		s = s[i+1:]
	}
}
