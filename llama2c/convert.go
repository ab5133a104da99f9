package llama2c

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"tamp/gguf"
	"tamp/tensor"
)

// llama.cpp's token types (llama_token_type).
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenByte    = 6
)

// The special ids llama.cpp's converter assumes for every llama2.c vocabulary:
// SentencePiece's defaults, which llama2.c's own tokenizers follow.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// noToken is how the converter writes "no separator / padding token":
// uint32(-1), llama.cpp's LLAMA_TOKEN_NULL.
const noToken = ^uint32(0)

// Vocab maps llama2.c pieces to the GGUF vocabulary llama.cpp's converter
// writes: ids 0, 1 and 2 become "<unk>", "<s>" and "</s>" (unknown, control,
// control) whatever their text, an empty piece is a control token, "<0xHH>" is
// a byte token, and every ASCII space becomes SentencePiece's "▁" (U+2581),
// undoing the replacement llama2.c's export made.
//
// Byte tokens are recognised only in their canonical six-character form; the
// converter's sscanf("<0x%02hhX>") also accepts prefixes such as "<0x4", which
// llama.cpp then cannot decode as a byte. The two agree on every real
// vocabulary.
func Vocab(t *Tokenizer) (tokens []string, types []int32) {
	tokens = make([]string, len(t.Pieces))
	types = make([]int32, len(t.Pieces))
	for id, p := range t.Pieces {
		typ := int32(tokenNormal)
		switch {
		case id == unkID:
			p, typ = "<unk>", tokenUnknown
		case id == bosID:
			p, typ = "<s>", tokenControl
		case id == eosID:
			p, typ = "</s>", tokenControl
		case p == "":
			typ = tokenControl
		case isByteToken(p):
			typ = tokenByte
		}
		tokens[id] = strings.ReplaceAll(p, " ", "\u2581")
		types[id] = typ
	}
	return tokens, types
}

func isByteToken(p string) bool {
	return len(p) == 6 && strings.HasPrefix(p, "<0x") && isHex(p[3]) && isHex(p[4]) && p[5] == '>'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Convert builds the GGUF file for a parsed checkpoint and tokenizer, with the
// keys, key order and tensors of llama.cpp's convert-llama2c-to-ggml. Where
// that converter writes a placeholder, Convert writes the model's own value:
//
//   - llama.context_length is the checkpoint's seq_len, the length the model
//     was trained at; the converter writes its own default (2048 in older
//     versions, 128 in newer ones).
//   - general.name is name (the checkpoint's file name without extension when
//     called from Load); the converter always writes "llama". An empty name
//     gives "llama".
//   - llama.rope.dimension_count is the head size; the converter caps it at
//     64, which would leave part of a wider head unrotated although llama2.c
//     rotates the whole head.
//
// The tensors alias the checkpoint's data.
func Convert(ck *Checkpoint, tok *Tokenizer, name string) (*gguf.File, error) {
	c := ck.Config
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(tok.Pieces) != c.VocabSize || len(tok.Scores) != c.VocabSize {
		return nil, fmt.Errorf("llama2c: vocab size mismatch: the checkpoint has %d tokens, the tokenizer %d (is it the tokenizer this model was trained with?)",
			c.VocabSize, len(tok.Pieces))
	}
	if name == "" {
		name = "llama"
	}
	tokens, types := Vocab(tok)
	f := gguf.New()
	f.Set("tokenizer.ggml.tokens", gguf.StringArray(tokens))
	f.Set("tokenizer.ggml.scores", gguf.Float32Array(tok.Scores))
	f.Set("tokenizer.ggml.token_type", gguf.Int32Array(types))
	f.Set("tokenizer.ggml.model", gguf.String("llama"))
	f.Set("general.architecture", gguf.String("llama"))
	f.Set("general.name", gguf.String(name))
	f.Set("tokenizer.ggml.unknown_token_id", gguf.Uint32(unkID))
	f.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(bosID))
	f.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(eosID))
	f.Set("tokenizer.ggml.seperator_token_id", gguf.Uint32(noToken)) // sic: llama.cpp's spelling
	f.Set("tokenizer.ggml.padding_token_id", gguf.Uint32(noToken))
	f.Set("llama.context_length", gguf.Uint32(uint32(c.SeqLen)))
	f.Set("llama.embedding_length", gguf.Uint32(uint32(c.Dim)))
	f.Set("llama.feed_forward_length", gguf.Uint32(uint32(c.HiddenDim)))
	f.Set("llama.attention.head_count", gguf.Uint32(uint32(c.Heads)))
	f.Set("llama.attention.head_count_kv", gguf.Uint32(uint32(c.KVHeads)))
	f.Set("llama.block_count", gguf.Uint32(uint32(c.Layers)))
	f.Set("llama.rope.dimension_count", gguf.Uint32(uint32(c.HeadSize())))
	// llama2.c hard-codes this epsilon in run.c's rmsnorm.
	f.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	for _, t := range ck.Tensors {
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("llama2c: %w", err)
		}
		dims := make([]uint64, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = uint64(d)
		}
		if err := f.AddTensor(t.Name, tensor.F32, dims, t.Data); err != nil {
			return nil, fmt.Errorf("llama2c: %w", err)
		}
	}
	return f, nil
}

// Load reads a llama2.c checkpoint (any supported version) and its tokenizer
// into an in-memory GGUF file. An empty tokenizerPath looks for one beside the
// checkpoint (see ResolveTokenizer) and fails, saying to pass --tokenizer, if
// none fits. The whole checkpoint is read into memory; the tensors alias it.
func Load(checkpointPath, tokenizerPath string) (*gguf.File, error) {
	if tokenizerPath == "" {
		p, err := ResolveTokenizer(checkpointPath)
		if err != nil {
			return nil, err
		}
		tokenizerPath = p
	}
	data, err := os.ReadFile(checkpointPath)
	if err != nil {
		return nil, err
	}
	ck, err := ReadCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, checkpointPath)
	}
	tok, err := ReadTokenizerFile(tokenizerPath)
	if err != nil {
		return nil, err
	}
	if len(tok.Pieces) != ck.Config.VocabSize {
		return nil, fmt.Errorf("llama2c: vocab size mismatch: checkpoint %s has %d tokens, tokenizer %s has %d (pass the tokenizer this model was trained with)",
			checkpointPath, ck.Config.VocabSize, tokenizerPath, len(tok.Pieces))
	}
	name := strings.TrimSuffix(filepath.Base(checkpointPath), filepath.Ext(checkpointPath))
	return Convert(ck, tok, name)
}
