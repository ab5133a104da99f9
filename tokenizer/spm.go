package tokenizer

import "sync"

// symbol is one node of the doubly linked list of text pieces being merged:
// bytes [start, start+n) of the text; n == 0 once merged into its left
// neighbour.
type symbol struct {
	prev, next int32
	start, n   int32
}

// spmBigram is a candidate merge of two adjacent symbols.
type spmBigram struct {
	left, right int32
	score       float32
	size        int32 // combined length when queued; a change means it is stale
}

// spmQueue is a binary heap: highest score first, leftmost first on ties,
// the order of llama.cpp's llm_bigram_spm comparator.
type spmQueue []spmBigram

func (q spmQueue) before(i, j int) bool {
	a, b := &q[i], &q[j]
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

func (q *spmQueue) push(b spmBigram) {
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

func (q *spmQueue) pop() spmBigram {
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

// spmState is the scratch space of one encodeSPM call, pooled so that
// repeated calls on long texts do not keep the garbage collector busy.
type spmState struct {
	syms  []symbol
	queue spmQueue
}

var spmPool = sync.Pool{New: func() any { return new(spmState) }}

// utf8Len is the sequence length announced by a UTF-8 lead byte, computed from
// its high nibble exactly as llama.cpp's unicode_len_utf8 (continuation and
// invalid bytes count as 1).
func utf8Len(b byte) int {
	return int("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x03\x04"[b>>4])
}

// encodeSPM appends the tokens of text (spaces already escaped) to out, as
// llama.cpp's llm_tokenizer_spm_session: start from single characters, merge
// the adjacent pair whose union is the best-scoring token until none is left,
// then emit each symbol as its token or as byte tokens.
func (t *Tokenizer) encodeSPM(text string, out []int32) []int32 {
	if text == "" {
		return out
	}
	st := spmPool.Get().(*spmState)
	defer spmPool.Put(st)
	syms := st.syms[:0]
	for off := 0; off < len(text); {
		n := utf8Len(text[off])
		if n > len(text)-off {
			n = len(text) - off
		}
		i := int32(len(syms))
		next := i + 1
		if off+n == len(text) {
			next = -1
		}
		syms = append(syms, symbol{prev: i - 1, next: next, start: int32(off), n: int32(n)})
		off += n
	}

	q := st.queue[:0]
	try := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := &syms[left], &syms[right]
		s := text[l.start : r.start+r.n]
		id, ok := t.index[s]
		if !ok {
			return
		}
		q.push(spmBigram{left: left, right: right, score: t.scores[id], size: int32(len(s))})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(q) > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
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

	for i := int32(0); i != -1; i = syms[i].next {
		s := &syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.index[piece]; ok {
			out = append(out, id)
			continue
		}
		// Every merge result is a token, so a symbol without one is a single
		// character missing from the vocabulary: spell it out in bytes.
		// (llama.cpp's rev_merge lookup cannot fire here for that reason.)
		out = t.appendBytes(out, piece)
	}
	return out
}

// appendBytes emits the byte tokens of an unknown character. llama.cpp
// aborts when the vocabulary lacks one; tamp emits one unknown token for the
// character instead (as SentencePiece without byte fallback does), or nothing
// when there is no unknown token either.
func (t *Tokenizer) appendBytes(out []int32, piece string) []int32 {
	for j := 0; j < len(piece); j++ {
		if t.byteTok[piece[j]] == NoToken {
			if t.unk != NoToken {
				out = append(out, t.unk)
			}
			return out
		}
	}
	for j := 0; j < len(piece); j++ {
		out = append(out, t.byteTok[piece[j]])
	}
	return out
}
