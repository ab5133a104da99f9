package eval

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// baseMagic opens every base file, as in llama.cpp.
const baseMagic = "_logits_"

// baseHeaderLen is the size of the magic and the three int32 counts.
const baseHeaderLen = 8 + 3*4

// Base is a base model's stored log-probabilities: the header and tokens of a
// base file, with the per-position rows read on demand (a base file for a real
// vocabulary runs to gigabytes). See the package documentation for the format.
type Base struct {
	Ctx    int     // tokens per chunk
	Vocab  int     // vocabulary size
	Chunks int     // chunks stored
	Tokens []int32 // Chunks·Ctx tokens, as tokenized (BOS substitution not applied)

	ra      io.ReaderAt // random access, when the source supports it
	dataOff int64       // offset of the first row in ra

	mu   sync.Mutex
	r    io.Reader // sequential access otherwise
	next int       // next chunk r will deliver
	err  error     // sticky failure of r
	buf  []byte
}

// RowsPerChunk is the number of scored positions, hence stored rows, per
// chunk: Ctx−1−Ctx/2.
func (b *Base) RowsPerChunk() int { return b.Ctx - 1 - b.Ctx/2 }

// RowLen is the length of one stored row in uint16 values; see [BaseRowLen].
func (b *Base) RowLen() int { return BaseRowLen(b.Vocab) }

// chunkBytes is the size of one chunk's rows in the file.
func (b *Base) chunkBytes() int64 {
	return int64(b.RowsPerChunk()) * int64(b.RowLen()) * 2
}

// ReadBase reads a base file's header and tokens from r and checks them for
// consistency. The rows are read later by [Base.ReadChunk], and so by
// [Perplexity].
//
// When r also implements io.ReaderAt and io.Seeker (as *os.File and
// *bytes.Reader do), ReadBase checks that the file size is exactly what the
// header promises, and the Base reads rows at their offsets: it can be used for
// any number of evaluations, concurrently. Otherwise the Base consumes r
// sequentially and serves a single evaluation; truncation is then reported when
// the missing rows are reached. Either way r must stay open while the Base is
// in use.
func ReadBase(r io.Reader) (*Base, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		if sk, ok := r.(io.Seeker); ok {
			if b, ok, err := readBaseAt(ra, sk); ok {
				return b, err
			}
		}
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [baseHeaderLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, truncated("header", err)
	}
	b, err := parseBaseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	// Read the tokens in bounded pieces so that a hostile count cannot make us
	// allocate more than the stream actually holds.
	n := b.Ctx * b.Chunks
	b.Tokens = make([]int32, 0, min(n, 1<<16))
	var piece [4 << 12]byte
	for len(b.Tokens) < n {
		k := min(n-len(b.Tokens), len(piece)/4)
		if _, err := io.ReadFull(br, piece[:4*k]); err != nil {
			return nil, truncated(fmt.Sprintf("tokens (%d of %d read)", len(b.Tokens), n), err)
		}
		for i := range k {
			b.Tokens = append(b.Tokens, int32(binary.LittleEndian.Uint32(piece[4*i:])))
		}
	}
	if err := b.checkTokens(); err != nil {
		return nil, err
	}
	b.r = br
	return b, nil
}

// readBaseAt handles a random-access source. ok is false when the source
// cannot report its size, and the caller falls back to reading sequentially.
func readBaseAt(ra io.ReaderAt, sk io.Seeker) (b *Base, ok bool, err error) {
	start, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false, nil
	}
	end, err := sk.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, false, nil
	}
	if _, err := sk.Seek(start, io.SeekStart); err != nil {
		return nil, false, nil
	}
	size := end - start
	var hdr [baseHeaderLen]byte
	if err := readFullAt(ra, hdr[:], start); err != nil {
		return nil, true, truncated("header", err)
	}
	b, err = parseBaseHeader(hdr[:])
	if err != nil {
		return nil, true, err
	}
	tokBytes := int64(b.Ctx) * int64(b.Chunks) * 4
	want := baseHeaderLen + tokBytes + int64(b.Chunks)*b.chunkBytes()
	if size != want {
		what := "truncated"
		if size > want {
			what = "has trailing data"
		}
		return nil, true, fmt.Errorf("eval: base file %s: %d bytes, but its header (n_ctx %d, n_vocab %d, n_chunk %d) calls for %d",
			what, size, b.Ctx, b.Vocab, b.Chunks, want)
	}
	raw := make([]byte, tokBytes)
	if err := readFullAt(ra, raw, start+baseHeaderLen); err != nil {
		return nil, true, truncated("tokens", err)
	}
	b.Tokens = make([]int32, b.Ctx*b.Chunks)
	for i := range b.Tokens {
		b.Tokens[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if err := b.checkTokens(); err != nil {
		return nil, true, err
	}
	b.ra = ra
	b.dataOff = start + baseHeaderLen + tokBytes
	return b, true, nil
}

// readFullAt fills p from offset off. io.ReaderAt may report io.EOF along with
// a full read that ends exactly at the end of the source; that is success.
func readFullAt(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func truncated(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("eval: base file truncated in its %s", what)
	}
	return fmt.Errorf("eval: reading base file %s: %w", what, err)
}

func parseBaseHeader(h []byte) (*Base, error) {
	if string(h[:8]) != baseMagic {
		return nil, fmt.Errorf("eval: not a base log-probability file: magic %q, want %q", h[:8], baseMagic)
	}
	nctx := int32(binary.LittleEndian.Uint32(h[8:]))
	nvocab := int32(binary.LittleEndian.Uint32(h[12:]))
	nchunk := int32(binary.LittleEndian.Uint32(h[16:]))
	switch {
	case nctx < 3:
		return nil, fmt.Errorf("eval: base file has n_ctx %d; at least 3 is needed for a scored position", nctx)
	case nvocab < 1:
		return nil, fmt.Errorf("eval: base file has n_vocab %d", nvocab)
	case nchunk < 1:
		return nil, fmt.Errorf("eval: base file has n_chunk %d", nchunk)
	case int64(nctx)*int64(nchunk) > math.MaxInt32:
		return nil, fmt.Errorf("eval: base file claims %d chunks of %d tokens, more than 2³¹ tokens", nchunk, nctx)
	}
	return &Base{Ctx: int(nctx), Vocab: int(nvocab), Chunks: int(nchunk)}, nil
}

func (b *Base) checkTokens() error {
	for i, t := range b.Tokens {
		if t < 0 || int(t) >= b.Vocab {
			return fmt.Errorf("eval: base file token %d is %d, outside the vocabulary of %d", i, t, b.Vocab)
		}
	}
	return nil
}

// ReadChunk reads the stored rows of chunk c (RowsPerChunk rows of RowLen
// values each, row after row) into dst, growing it if needed, and returns it.
// A Base read from a sequential source delivers its chunks once each, in order.
func (b *Base) ReadChunk(c int, dst []uint16) ([]uint16, error) {
	if c < 0 || c >= b.Chunks {
		return dst, fmt.Errorf("eval: base chunk %d out of range [0, %d)", c, b.Chunks)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var read func(p []byte) error
	switch {
	case b.ra != nil:
		off := b.dataOff + int64(c)*b.chunkBytes()
		read = func(p []byte) error {
			err := readFullAt(b.ra, p, off)
			off += int64(len(p))
			return err
		}
	case b.r == nil:
		return dst, fmt.Errorf("eval: base has no row data (not read by ReadBase)")
	case b.err != nil:
		return dst, b.err
	case c != b.next:
		return dst, fmt.Errorf("eval: base chunk %d requested, but this base is read sequentially and is at chunk %d (open it from a file or bytes.Reader to reuse it)", c, b.next)
	default:
		read = func(p []byte) error {
			_, err := io.ReadFull(b.r, p)
			return err
		}
	}
	// Read in bounded pieces so that dst grows only as data actually arrives:
	// a sequential source cannot be checked against its header beforehand.
	if b.buf == nil {
		b.buf = make([]byte, 1<<16)
	}
	total := b.chunkBytes()
	if int64(cap(dst)) >= total/2 {
		dst = dst[:0]
	} else {
		dst = make([]uint16, 0, min(total/2, 1<<20))
	}
	for done := int64(0); done < total; {
		p := b.buf[:min(int64(len(b.buf)), total-done)]
		if err := read(p); err != nil {
			err = truncated(fmt.Sprintf("rows of chunk %d", c), err)
			if b.ra == nil {
				b.err = err // the stream position is now unknown
			}
			return dst, err
		}
		for i := 0; i < len(p); i += 2 {
			dst = append(dst, binary.LittleEndian.Uint16(p[i:]))
		}
		done += int64(len(p))
	}
	if b.ra == nil {
		b.next++
	}
	return dst, nil
}

// BaseWriter writes a base file row by row, as [Perplexity] does when
// [Options.SaveBase] is set. Rows go straight to the underlying writer, which
// should be buffered.
type BaseWriter struct {
	w           io.Writer
	vocab, ctx  int
	rows, total int // rows written, rows the header promises
	row         []uint16
	buf         []byte
}

// NewBaseWriter writes the header and tokens of a base file with chunks of ctx
// tokens over the given vocabulary; tokens holds every chunk's tokens, so its
// length must be a positive multiple of ctx.
func NewBaseWriter(w io.Writer, ctx, vocab int, tokens []int32) (*BaseWriter, error) {
	switch {
	case ctx < 3 || ctx > math.MaxInt32:
		return nil, fmt.Errorf("eval: base file ctx %d out of range [3, 2³¹)", ctx)
	case vocab < 1 || vocab > math.MaxInt32:
		return nil, fmt.Errorf("eval: base file vocabulary %d out of range [1, 2³¹)", vocab)
	case len(tokens) == 0 || len(tokens)%ctx != 0 || len(tokens) > math.MaxInt32:
		return nil, fmt.Errorf("eval: base file needs whole chunks of %d tokens, got %d tokens", ctx, len(tokens))
	}
	chunks := len(tokens) / ctx
	hdr := make([]byte, baseHeaderLen, baseHeaderLen+4*len(tokens))
	copy(hdr, baseMagic)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(ctx))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(vocab))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(chunks))
	for i, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return nil, fmt.Errorf("eval: token %d is %d, outside the vocabulary of %d", i, t, vocab)
		}
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(t))
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("eval: writing base file header: %w", err)
	}
	nv := BaseRowLen(vocab)
	return &BaseWriter{
		w: w, vocab: vocab, ctx: ctx,
		total: chunks * (ctx - 1 - ctx/2),
		row:   make([]uint16, nv),
		buf:   make([]byte, 2*nv),
	}, nil
}

// WriteRow stores the next scored position, the row of logits predicting token
// next, and returns that token's negative log-likelihood as llama.cpp computes
// it while saving.
func (bw *BaseWriter) WriteRow(logits []float32, next int32) (float64, error) {
	if len(logits) != bw.vocab {
		return 0, errVocabMismatch(bw.vocab, len(logits))
	}
	if bw.rows >= bw.total {
		return 0, fmt.Errorf("eval: base file already holds all %d rows its header promises", bw.total)
	}
	nll, err := EncodeBaseRow(bw.row, logits, next)
	if err != nil {
		return 0, err
	}
	for i, v := range bw.row {
		binary.LittleEndian.PutUint16(bw.buf[2*i:], v)
	}
	if _, err := bw.w.Write(bw.buf); err != nil {
		return 0, fmt.Errorf("eval: writing base file row %d: %w", bw.rows, err)
	}
	bw.rows++
	return nll, nil
}

// Finish reports an error unless every row the header promises was written.
// It does not close or flush the underlying writer.
func (bw *BaseWriter) Finish() error {
	if bw.rows != bw.total {
		return fmt.Errorf("eval: base file incomplete: %d of %d rows written", bw.rows, bw.total)
	}
	return nil
}

func errVocabMismatch(want, got int) error {
	return fmt.Errorf("eval: logits row has %d values, want the vocabulary size %d", got, want)
}
