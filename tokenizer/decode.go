package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// parseByteToken reads the byte of a "<0xXX>" token text.
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | c
	}
	return v, true
}

// piece renders one token as llama.cpp's token_to_piece: control and unknown
// tokens only when special is set, user-defined tokens verbatim, normal
// tokens with "▁" turned back into spaces (SPM) or GPT-2 byte characters
// turned back into bytes (BPE), byte tokens as their byte, and unused or
// undefined tokens as nothing.
func (t *Tokenizer) piece(id int32, special bool) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	a, text := t.attrs[id], t.tokens[id]
	switch {
	case a&(attrControl|attrUnknown) != 0:
		if special {
			return text
		}
		return ""
	case a&attrUser != 0:
		return text
	case a&attrNormal != 0:
		if t.kind == kindSPM {
			return strings.ReplaceAll(text, spaceMark, " ")
		}
		return decodeBPEText(text)
	case a&attrByte != 0:
		b, _ := parseByteToken(text) // checked in New
		return string([]byte{b})
	}
	return ""
}

// decodeBPEText maps GPT-2 byte characters back to bytes, as llama.cpp's
// llama_decode_text, including its "[UNK_BYTE_0x…]" marker for characters
// outside the byte table.
func decodeBPEText(text string) string {
	var b strings.Builder
	var cpts []rune
	cpts = decodeCpts(text, cpts)
	var enc []byte
	for _, r := range cpts {
		if v, ok := byteDecode[r]; ok {
			b.WriteByte(v)
			continue
		}
		b.WriteString("[UNK_BYTE_0x")
		enc = appendCpt(enc[:0], r)
		for _, c := range enc {
			fmt.Fprintf(&b, "%02x", c)
		}
		b.WriteString(text)
		b.WriteString("]")
	}
	return b.String()
}

// Piece returns the bytes token id stands for: "▁" becomes a space, "<0xXX>"
// its byte, GPT-2 byte characters their bytes, and control and unknown
// tokens (such as BOS and EOS) nothing. The result need not be valid UTF-8:
// a byte token may hold part of a character. Out-of-range ids give "".
func (t *Tokenizer) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// PieceSpecial is Piece, except that control and unknown tokens give their
// vocabulary text ("<s>", "<|im_end|>").
func (t *Tokenizer) PieceSpecial(id int32) string { return t.piece(id, true) }

// Decode converts ids back to text as llama.cpp's llama_detokenize with
// remove_special and unparse_special off: the pieces are concatenated,
// control tokens vanish, and
//   - when the vocabulary adds a space prefix (SPM), one leading space of
//     the first token is dropped, so Decode(Encode(s, false, false)) gives
//     back s (a literal "▁" in s comes back as a space); with a BOS first
//     (Encode(s, true, false)) the space stays, giving " "+s;
//   - for BPE vocabularies whose pre-tokenizer asks for it (GPT-2, Llama 3,
//     not Qwen 2), spaces before ? ! . , and before 's 'm 're 've are removed,
//     and " ' " becomes "'", as Hugging Face's clean_up_tokenization_spaces.
//
// Byte tokens that split a character are joined before the text is
// returned; bytes that never form valid UTF-8 are returned as they are.
func (t *Tokenizer) Decode(ids []int32) string {
	var buf []byte
	removeSpace := t.addSpacePrefix
	for _, id := range ids {
		p := t.Piece(id)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		buf = append(buf, p...)
	}
	if t.cleanSpaces {
		buf = cleanSpaces(buf)
	}
	return string(buf)
}

// cleanSpaces applies llama.cpp's three clean-up passes in place.
func cleanSpaces(text []byte) []byte {
	if len(text) == 0 {
		return text
	}
	// " ?", " !", " .", " ," lose the space.
	n := 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			n--
		}
		text[n] = x
		n++
	}
	text = text[:n]
	// " ' " becomes "'".
	n = 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if x == '\'' && i+1 < len(text) && text[i-1] == ' ' && text[i+1] == ' ' {
			n--
			// Skip the following space; like llama.cpp, overwrite it with
			// NUL so it cannot serve as the leading space of another match.
			i++
			text[i] = 0
		}
		text[n] = x
		n++
	}
	text = text[:n]
	// " 's", " 'm", " 're", " 've" lose the space.
	n = 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < len(text) {
			x1 := text[i+1]
			switch {
			case x1 == 's' || x1 == 'm':
				n--
			case x1 == 't' || x1 == 'd':
			case i+2 < len(text):
				x2 := text[i+2]
				if (x1 == 'r' || x1 == 'v') && x2 == 'e' {
					n--
				}
			}
		}
		text[n] = x
		n++
	}
	return text[:n]
}

// Decoder turns a stream of token ids into text, holding back the bytes of a
// character that is split across tokens until it is complete. Set its
// options before the first Add. A Decoder is not safe for concurrent use.
type Decoder struct {
	t       *Tokenizer
	prev    int32
	pending []byte

	// StripSpaceAfterBOS drops one leading space from a piece that directly
	// follows BOS, as llama2.c's run.c does when printing.
	StripSpaceAfterBOS bool
	// Special renders control and unknown tokens as their vocabulary text
	// instead of nothing.
	Special bool
}

// NewDecoder returns a streaming decoder for t.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t, prev: NoToken} }

// Add appends the piece of id and returns the text that is now complete: all
// pending bytes except a trailing, still incomplete UTF-8 sequence. Bytes that
// can never become valid UTF-8 are passed through unchanged, so the
// concatenation of everything Add and Flush return equals the concatenation
// of the pieces.
func (d *Decoder) Add(id int32) string {
	p := d.t.piece(id, d.Special)
	if d.StripSpaceAfterBOS && d.prev == d.t.bos && d.prev != NoToken && len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	d.prev = id
	d.pending = append(d.pending, p...)
	n := completePrefix(d.pending)
	if n == 0 {
		return ""
	}
	out := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// Flush returns whatever bytes are still held back, even if they do not form
// a complete character, and resets the decoder's pending state.
func (d *Decoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}

// completePrefix returns the length of b without a trailing UTF-8 sequence
// that is valid so far but incomplete.
func completePrefix(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		if b[i]&0xC0 == 0x80 {
			continue // continuation byte: look for its lead
		}
		if !utf8.FullRune(b[i:]) {
			return i
		}
		break
	}
	return len(b)
}
