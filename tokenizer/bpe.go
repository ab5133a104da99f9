package tokenizer

import "sync"

// byteEncode maps each byte to the printable character GPT-2's byte-level BPE
// writes for it (bytes_to_unicode): printable Latin-1 bytes stand for
// themselves, the other 68 are moved to U+0100 onward in byte order.
// byteDecode is its inverse.
var (
	byteEncode [256]string
	byteDecode = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= 0x21 && b <= 0x7E || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
			r = rune(256 + n)
			n++
		}
		byteEncode[b] = string(r)
		byteDecode[r] = byte(b)
	}
}

// bpeSymbol is a piece of the byte-encoded word being merged: bytes
// [start, start+n), n == 0 once merged into its left neighbour.
type bpeSymbol = symbol

type bpeBigram struct {
	left, right int32
	rank        int32
	size        int32
}

// bpeQueue is a binary heap: lowest rank first, leftmost first on ties, the
// order of llama.cpp's llm_bigram_bpe comparator.
type bpeQueue []bpeBigram

func (q bpeQueue) before(i, j int) bool {
	a, b := &q[i], &q[j]
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

func (q *bpeQueue) push(b bpeBigram) {
	*q = append(*q, b)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.before(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *bpeQueue) pop() bpeBigram {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.before(r, l) {
			m = r
		}
		if !h.before(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// bpeState is the scratch space of one encodeBPE call, pooled because a long
// text is many short words.
type bpeState struct {
	split splitter
	word  []byte
	utf8  []byte
	syms  []bpeSymbol
	queue bpeQueue
}

var bpePool = sync.Pool{New: func() any { return new(bpeState) }}

// encodeBPE appends the tokens of text to out, as llama.cpp's
// llm_tokenizer_bpe_session: pre-tokenize, byte-encode each word, merge
// adjacent symbols by rank, and emit each symbol as its token.
func (t *Tokenizer) encodeBPE(text string, out []int32) []int32 {
	st := bpePool.Get().(*bpeState)
	defer bpePool.Put(st)
	offsets := t.preSplit(text, &st.split)
	start := 0
	for _, n := range offsets {
		st.word = st.word[:0]
		for _, r := range st.split.cpts[start : start+n] {
			st.utf8 = appendCpt(st.utf8[:0], r)
			for _, b := range st.utf8 {
				st.word = append(st.word, byteEncode[b]...)
			}
		}
		start += n
		out = t.mergeWord(string(st.word), st, out)
	}
	return out
}

func (t *Tokenizer) mergeWord(word string, st *bpeState, out []int32) []int32 {
	if t.ignoreMerges {
		if id, ok := t.index[word]; ok {
			return append(out, id)
		}
	}
	syms := st.syms[:0]
	for off := 0; off < len(word); {
		n := utf8Len(word[off])
		if n > len(word)-off {
			n = len(word) - off
		}
		i := int32(len(syms))
		next := i + 1
		if off+n == len(word) {
			next = -1
		}
		syms = append(syms, bpeSymbol{prev: i - 1, next: next, start: int32(off), n: int32(n)})
		off += n
	}
	q := st.queue[:0]
	try := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := &syms[left], &syms[right]
		rank, ok := t.ranks[mergePair{word[l.start : l.start+l.n], word[r.start : r.start+r.n]}]
		if !ok {
			return
		}
		q.push(bpeBigram{left: left, right: right, rank: rank, size: l.n + r.n})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(q) > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
		// Symbols only grow by swallowing their right neighbour, so an
		// unchanged combined length means the pair's text is unchanged
		// (llama.cpp compares the strings).
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	st.syms, st.queue = syms, q

	for i := int32(0); i != -1 && len(syms) > 0; i = syms[i].next {
		s := &syms[i]
		piece := word[s.start : s.start+s.n]
		if id, ok := t.index[piece]; ok {
			out = append(out, id)
			continue
		}
		// As llama.cpp: try each byte of the encoded text as a token of its
		// own; bytes that are not (any non-ASCII byte) are dropped.
		for j := 0; j < len(piece); j++ {
			if id, ok := t.index[piece[j:j+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}
