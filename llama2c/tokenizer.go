package llama2c

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Tokenizer is a llama2.c tokenizer.bin: SentencePiece pieces with their merge
// scores, exactly as stored (spaces are ASCII, ids 1 and 2 read "\n<s>\n" and
// "\n</s>\n").
type Tokenizer struct {
	// MaxTokenLength is the longest piece in bytes, as the header states it.
	MaxTokenLength int
	// Pieces are the raw bytes of each token; Go strings hold any bytes.
	// They are not checked for UTF-8: llama.cpp's converter copies them
	// unchanged too, and a byte-level vocabulary may hold partial sequences.
	Pieces []string
	Scores []float32
}

// maxTokenLengthLimit bounds the header's max_token_length. Real vocabularies
// stay under a hundred bytes; the bound keeps a hostile header from claiming
// pieces longer than any file.
const maxTokenLengthLimit = 1 << 20

// ReadTokenizer parses a whole tokenizer file. The format does not record the
// token count, so every token up to the end of data is read; Load compares the
// count with the checkpoint's vocabulary.
func ReadTokenizer(data []byte) (*Tokenizer, error) {
	le := binary.LittleEndian
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2c: tokenizer is %d bytes, too short for its max_token_length header", len(data))
	}
	maxLen := int(int32(le.Uint32(data)))
	if maxLen <= 0 || maxLen > maxTokenLengthLimit {
		return nil, fmt.Errorf("llama2c: tokenizer max_token_length %d is not in [1, %d]", maxLen, maxTokenLengthLimit)
	}
	t := &Tokenizer{MaxTokenLength: maxLen}
	off := 4
	for off < len(data) {
		id := len(t.Pieces)
		if len(data)-off < 8 {
			return nil, fmt.Errorf("llama2c: tokenizer truncated in the score/length of token %d at byte %d (%d bytes left, need 8)", id, off, len(data)-off)
		}
		score := math.Float32frombits(le.Uint32(data[off:]))
		n := int(int32(le.Uint32(data[off+4:])))
		off += 8
		switch {
		case n < 0:
			return nil, fmt.Errorf("llama2c: tokenizer token %d has negative length %d", id, n)
		case n > maxLen:
			return nil, fmt.Errorf("llama2c: tokenizer token %d is %d bytes, longer than max_token_length %d", id, n, maxLen)
		case n > len(data)-off:
			return nil, fmt.Errorf("llama2c: tokenizer truncated in token %d: %d bytes long, %d left", id, n, len(data)-off)
		}
		if math.IsNaN(float64(score)) {
			return nil, fmt.Errorf("llama2c: tokenizer token %d has score NaN", id)
		}
		t.Pieces = append(t.Pieces, string(data[off:off+n]))
		t.Scores = append(t.Scores, score)
		off += n
	}
	if len(t.Pieces) == 0 {
		return nil, errors.New("llama2c: tokenizer holds no tokens")
	}
	return t, nil
}

// ReadTokenizerFile reads and parses the tokenizer at path.
func ReadTokenizerFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ReadTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return t, nil
}

// ResolveTokenizer finds the tokenizer for a checkpoint when none is named:
// tok<vocab>.bin (llama2.c's name for custom vocabularies, e.g. tok512.bin)
// or tokenizer.bin (its default 32000-token Llama 2 vocabulary) in the
// checkpoint's folder, whichever first holds exactly the checkpoint's
// vocabulary size. Callers print the path so users see which one was used.
func ResolveTokenizer(checkpointPath string) (string, error) {
	cfg, _, err := ReadConfig(checkpointPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(checkpointPath)
	names := []string{fmt.Sprintf("tok%d.bin", cfg.VocabSize), "tokenizer.bin"}
	var why []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		t, err := ReadTokenizerFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = append(why, name+" absent")
		case err != nil:
			why = append(why, fmt.Sprintf("%s unreadable: %v", name, err))
		case len(t.Pieces) != cfg.VocabSize:
			why = append(why, fmt.Sprintf("%s has %d tokens, not %d", name, len(t.Pieces), cfg.VocabSize))
		default:
			return p, nil
		}
	}
	return "", fmt.Errorf("llama2c: no tokenizer given for %s and none found beside it (%s); pass the llama2.c tokenizer .bin with --tokenizer",
		checkpointPath, strings.Join(why, "; "))
}
