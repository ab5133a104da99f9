package tokenizer

import (
	"fmt"
	"unicode"
)

// preKind selects the BPE pre-tokenizer: the regular expressions llama.cpp's
// llm_tokenizer_bpe applies, written here as hand-made state machines because
// they use look-ahead and Unicode classes that Go's regexp cannot express.
type preKind uint8

const (
	// preDefault is llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT, four regexes in turn:
	//	[\p{P}\$\+<=>\^~\|]+
	//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
	//	\p{N}+
	//	[0-9][0-9][0-9]
	preDefault preKind = iota
	// preGPT2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
	preGPT2
	// preLlama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	preLlama3
	// preQwen2 is preLlama3 with \p{N} (single digits) instead of \p{N}{1,3}.
	preQwen2
	// preStarCoder splits every \p{N} off, then applies preGPT2.
	preStarCoder
)

// preInfo is what a tokenizer.ggml.pre name implies in llama.cpp.
type preInfo struct {
	kind         preKind
	cleanSpaces  bool // detokenizer removes spaces before punctuation
	ignoreMerges bool // a word that is a whole token is not merged
	addBOS       bool // default for tokenizer.ggml.add_bos_token
	noBOS        bool // the default BOS id is none
}

var preTable = map[string]preInfo{}

func init() {
	add := func(info preInfo, names ...string) {
		for _, n := range names {
			preTable[n] = info
		}
	}
	add(preInfo{kind: preDefault, cleanSpaces: true}, "default")
	add(preInfo{kind: preGPT2, cleanSpaces: true}, "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
		"jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code",
		"roberta-bpe", "mpt", "olmo", "jais", "exaone4")
	add(preInfo{kind: preGPT2}, "trillion", "granite-docling")
	add(preInfo{kind: preLlama3, cleanSpaces: true, ignoreMerges: true, addBOS: true}, "llama3", "llama-v3",
		"llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")
	add(preInfo{kind: preLlama3, cleanSpaces: true}, "dbrx", "smaug-bpe")
	add(preInfo{kind: preLlama3, cleanSpaces: true, noBOS: true}, "glm4", "chatglm-bpe")
	add(preInfo{kind: preQwen2}, "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open")
	add(preInfo{kind: preQwen2, cleanSpaces: true}, "megrez", "stablelm2")
	add(preInfo{kind: preStarCoder, cleanSpaces: true}, "starcoder", "refact", "codeshell", "exaone",
		"minerva-7b", "mellum2")
	add(preInfo{kind: preStarCoder}, "command-r", "smollm")
}

// lookupPre maps a tokenizer.ggml.pre value to its settings; "" means
// "default", as in llama.cpp (which warns about it).
func lookupPre(name string) (preInfo, bool) {
	if name == "" {
		name = "default"
	}
	info, ok := preTable[name]
	return info, ok
}

func (t *Tokenizer) setPre(name string) {
	info, ok := lookupPre(name)
	t.preTag = name
	if name == "" {
		t.preTag = "default"
		t.warnings = append(t.warnings, "tokenizer: BPE vocabulary names no pre-tokenizer (tokenizer.ggml.pre); using llama.cpp's default splitting")
	}
	if !ok {
		info = preTable["gpt-2"]
		t.warnings = append(t.warnings, fmt.Sprintf("tokenizer: unknown BPE pre-tokenizer %q; falling back to GPT-2 splitting (llama.cpp refuses this file; tokenization may differ from the model's own)", name))
		t.preTag = "gpt-2"
	}
	t.pre = info.kind
	t.cleanSpaces = info.cleanSpaces
	t.ignoreMerges = info.ignoreMerges
}

// Character classes of llama.cpp's unicode_cpt_flags that the splitters use.
const (
	cfValid  uint8 = 1 << iota // inside the current chunk (llama.cpp: flags != 0)
	cfLetter                   // \p{L}
	cfNumber                   // \p{N}
	cfSpace                    // \s: Unicode White_Space
	cfPunct                    // \p{P}
)

// isWhiteSpace is the Unicode White_Space property, the list llama.cpp's
// gen-unicode-data.py writes out.
func isWhiteSpace(r rune) bool {
	switch {
	case r >= 0x09 && r <= 0x0D, r == 0x20, r == 0x85, r == 0xA0, r == 0x1680,
		r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

func cptFlags(r rune) uint8 {
	f := cfValid
	if r < 0x80 {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			return f | cfLetter
		case r >= '0' && r <= '9':
			return f | cfNumber
		case isWhiteSpace(r):
			return f | cfSpace
		case unicode.IsPunct(r):
			return f | cfPunct
		}
		return f
	}
	switch {
	case isWhiteSpace(r):
		f |= cfSpace
	case unicode.IsLetter(r):
		f |= cfLetter
	case unicode.IsNumber(r):
		f |= cfNumber
	case unicode.IsPunct(r):
		f |= cfPunct
	}
	return f
}

// decodeCpts decodes s as llama.cpp's unicode_cpts_from_utf8: lenient about
// overlong forms and surrogates, and each byte that starts no well-formed
// sequence becomes U+FFFD. Code points above U+10FFFF, which llama.cpp
// decodes and then fails to re-encode (an exception that aborts
// tokenization), become U+FFFD here.
func decodeCpts(s string, dst []rune) []rune {
	for off := 0; off < len(s); {
		r, n := decodeCpt(s, off)
		dst = append(dst, r)
		off += n
	}
	return dst
}

func decodeCpt(s string, off int) (rune, int) {
	const bad = 0xFFFD
	b0 := rune(s[off])
	cont := func(i int) bool { return off+i < len(s) && s[off+i]&0xC0 == 0x80 }
	c := func(i int) rune { return rune(s[off+i] & 0x3F) }
	switch {
	case b0&0x80 == 0:
		return b0, 1
	case b0&0x40 == 0:
		return bad, 1
	case b0&0x20 == 0:
		if !cont(1) {
			return bad, 1
		}
		return (b0&0x1F)<<6 | c(1), 2
	case b0&0x10 == 0:
		if !cont(1) || !cont(2) {
			return bad, 1
		}
		return (b0&0x0F)<<12 | c(1)<<6 | c(2), 3
	case b0&0x08 == 0:
		if !cont(1) || !cont(2) || !cont(3) {
			return bad, 1
		}
		r := (b0&0x07)<<18 | c(1)<<12 | c(2)<<6 | c(3)
		if r > 0x10FFFF {
			return bad, 4
		}
		return r, 4
	}
	return bad, 1
}

// appendCpt encodes r as llama.cpp's unicode_cpt_to_utf8, which (unlike
// utf8.AppendRune) writes surrogates as their three-byte form.
func appendCpt(dst []byte, r rune) []byte {
	switch {
	case r <= 0x7F:
		return append(dst, byte(r))
	case r <= 0x7FF:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r&0x3F))
	case r <= 0xFFFF:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
	}
	return append(dst, 0xF0|byte(r>>18&0x07), 0x80|byte(r>>12&0x3F), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
}

// splitter holds the text as code points and their classes while the
// pre-tokenizer's regexes are applied one after another; each pass refines
// the list of piece lengths (in code points), like llama.cpp's bpe_offsets.
type splitter struct {
	cpts  []rune
	flags []uint8
	out   []int
}

// chunk gives position-bounded access to one piece: outside [ini, end) a
// position has no class and code point -1, llama.cpp's OUT_OF_RANGE.
type chunk struct {
	s        *splitter
	ini, end int
	prev     int // end of the last emitted piece
}

func (c *chunk) cpt(p int) rune {
	if p >= c.ini && p < c.end {
		return c.s.cpts[p]
	}
	return -1
}

func (c *chunk) flags(p int) uint8 {
	if p >= c.ini && p < c.end {
		return c.s.flags[p]
	}
	return 0
}

// emit closes the piece ending at end and returns its length.
func (c *chunk) emit(end int) int {
	n := end - c.prev
	if n > 0 {
		c.s.out = append(c.s.out, n)
	}
	c.prev = end
	return n
}

// pass runs fn over every current piece and replaces the piece list by what
// fn emits.
func (s *splitter) pass(offsets []int, fn func(c *chunk)) []int {
	s.out = make([]int, 0, len(offsets)+len(offsets)/2)
	start := 0
	for _, n := range offsets {
		c := chunk{s: s, ini: start, end: start + n, prev: start}
		fn(&c)
		if c.prev < c.end { // a pass that stops early leaves the rest as one piece
			c.emit(c.end)
		}
		start += n
	}
	return s.out
}

// gpt2 is llama.cpp's unicode_regex_split_custom_gpt2:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func gpt2(c *chunk) {
	const cls = cfSpace | cfLetter | cfNumber
	for pos := c.ini; pos < c.end; {
		r := c.cpt(pos)
		f := c.flags(pos)
		if r == '\'' && pos+1 < c.end {
			n := c.cpt(pos + 1)
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += c.emit(pos + 2)
				continue
			}
			if pos+2 < c.end {
				nn := c.cpt(pos + 2)
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += c.emit(pos + 3)
					continue
				}
			}
		}
		f2 := f
		if r == ' ' {
			f2 = c.flags(pos + 1)
		}
		if f2&cfLetter != 0 {
			if r == ' ' {
				pos++
			}
			for c.flags(pos)&cfLetter != 0 {
				pos++
			}
			c.emit(pos)
			continue
		}
		if f2&cfNumber != 0 {
			if r == ' ' {
				pos++
			}
			for c.flags(pos)&cfNumber != 0 {
				pos++
			}
			c.emit(pos)
			continue
		}
		if f2&cls == 0 && f2 != 0 {
			if r == ' ' {
				pos++
			}
			for g := c.flags(pos); g&cls == 0 && g != 0; g = c.flags(pos) {
				pos++
			}
			c.emit(pos)
			continue
		}
		ws := 0
		for c.flags(pos+ws)&cfSpace != 0 {
			ws++
		}
		if ws > 1 && c.cpt(pos+ws) != -1 { // \s+(?!\S): leave one space for the next word
			pos += ws - 1
			c.emit(pos)
			continue
		}
		if ws > 0 {
			pos += ws
			c.emit(pos)
			continue
		}
		pos++
		c.emit(pos)
	}
}

// llama3 is llama.cpp's unicode_regex_split_custom_llama3; with digits == 1 it
// is the Qwen 2 regex, whose only difference is \p{N} for \p{N}{1,3}.
func llama3(c *chunk, digits int) {
	const cls = cfSpace | cfLetter | cfNumber
	for pos := c.ini; pos < c.end; {
		r := c.cpt(pos)
		f := c.flags(pos)
		// (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if r == '\'' && pos+1 < c.end {
			n := asciiLower(c.cpt(pos + 1))
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += c.emit(pos + 2)
				continue
			}
			if pos+2 < c.end {
				nn := asciiLower(c.cpt(pos + 2))
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += c.emit(pos + 3)
					continue
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(r == '\r' || r == '\n' || f&cfNumber != 0) {
			if f&cfLetter != 0 || c.flags(pos+1)&cfLetter != 0 {
				pos++
				for c.flags(pos)&cfLetter != 0 {
					pos++
				}
				c.emit(pos)
				continue
			}
		}
		// \p{N}{1,3}
		if f&cfNumber != 0 {
			ini := pos
			for c.flags(pos)&cfNumber != 0 {
				pos++
				if pos-ini >= digits {
					c.emit(pos)
					ini = pos
				}
			}
			c.emit(pos)
			continue
		}
		//  ?[^\s\p{L}\p{N}]+[\r\n]*
		f2 := f
		if r == ' ' {
			f2 = c.flags(pos + 1)
		}
		if f2&cls == 0 && f != 0 { // llama.cpp tests f here, not f2
			if r == ' ' {
				pos++
			}
			for g := c.flags(pos); g&cls == 0 && g != 0; g = c.flags(pos) {
				pos++
			}
			for r2 := c.cpt(pos); r2 == '\r' || r2 == '\n'; r2 = c.cpt(pos) {
				pos++
			}
			c.emit(pos)
			continue
		}
		ws, lastNL := 0, 0
		for c.flags(pos+ws)&cfSpace != 0 {
			if r2 := c.cpt(pos + ws); r2 == '\r' || r2 == '\n' {
				lastNL = pos + ws + 1
			}
			ws++
		}
		if lastNL > 0 { // \s*[\r\n]+
			pos = lastNL
			c.emit(pos)
			continue
		}
		if ws > 1 && c.cpt(pos+ws) != -1 { // \s+(?!\S)
			pos += ws - 1
			c.emit(pos)
			continue
		}
		if ws > 0 { // \s+
			pos += ws
			c.emit(pos)
			continue
		}
		pos++
		c.emit(pos)
	}
}

func asciiLower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// runs splits a piece into maximal runs of characters that do and do not
// satisfy in: the effect of a regex "[class]+" in llama.cpp's std::regex
// fallback, which keeps both the matches and the text between them.
func runs(in func(c *chunk, p int) bool) func(c *chunk) {
	return func(c *chunk) {
		for pos := c.ini; pos < c.end; {
			m := in(c, pos)
			for pos < c.end && in(c, pos) == m {
				pos++
			}
			c.emit(pos)
		}
	}
}

// eachNumber splits off every \p{N} character on its own (regex "\p{N}").
func eachNumber(c *chunk) {
	for pos := c.ini; pos < c.end; pos++ {
		if c.flags(pos)&cfNumber != 0 {
			c.emit(pos)
			c.emit(pos + 1)
		}
	}
}

// digitTriples splits off leftmost non-overlapping runs of three ASCII digits
// (regex "[0-9][0-9][0-9]").
func digitTriples(c *chunk) {
	digit := func(p int) bool { r := c.cpt(p); return r >= '0' && r <= '9' }
	for pos := c.ini; pos < c.end; {
		if digit(pos) && digit(pos+1) && digit(pos+2) {
			c.emit(pos)
			c.emit(pos + 3)
			pos += 3
			continue
		}
		pos++
	}
}

// defaultPunct is the class [\p{P}\$\+<=>\^~\|] of llama.cpp's default BPE
// pre-tokenizer.
func defaultPunct(c *chunk, p int) bool {
	if c.flags(p)&cfPunct != 0 {
		return true
	}
	switch c.cpt(p) {
	case '$', '+', '<', '=', '>', '^', '~', '|':
		return true
	}
	return false
}

// preSplit applies the pre-tokenizer to text and returns its pieces as
// code points plus piece lengths.
func (t *Tokenizer) preSplit(text string, s *splitter) []int {
	s.cpts = decodeCpts(text, s.cpts[:0])
	s.flags = s.flags[:0]
	for _, r := range s.cpts {
		s.flags = append(s.flags, cptFlags(r))
	}
	offsets := []int{len(s.cpts)}
	if len(s.cpts) == 0 {
		return nil
	}
	switch t.pre {
	case preGPT2:
		offsets = s.pass(offsets, gpt2)
	case preLlama3:
		offsets = s.pass(offsets, func(c *chunk) { llama3(c, 3) })
	case preQwen2:
		offsets = s.pass(offsets, func(c *chunk) { llama3(c, 1) })
	case preStarCoder:
		offsets = s.pass(offsets, eachNumber)
		offsets = s.pass(offsets, gpt2)
	default:
		offsets = s.pass(offsets, runs(defaultPunct))
		offsets = s.pass(offsets, gpt2)
		offsets = s.pass(offsets, runs(func(c *chunk, p int) bool { return c.flags(p)&cfNumber != 0 }))
		offsets = s.pass(offsets, digitTriples)
	}
	return offsets
}
