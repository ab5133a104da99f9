package tokenizer

import (
	"errors"
	"fmt"
	"math"

	"tamp/gguf"
)

// GGUF metadata keys read by FromGGUF.
const (
	keyModel       = "tokenizer.ggml.model"
	keyPre         = "tokenizer.ggml.pre"
	keyTokens      = "tokenizer.ggml.tokens"
	keyScores      = "tokenizer.ggml.scores"
	keyTypes       = "tokenizer.ggml.token_type"
	keyMerges      = "tokenizer.ggml.merges"
	keyBOS         = "tokenizer.ggml.bos_token_id"
	keyEOS         = "tokenizer.ggml.eos_token_id"
	keyEOT         = "tokenizer.ggml.eot_token_id"
	keyEOM         = "tokenizer.ggml.eom_token_id"
	keyUNK         = "tokenizer.ggml.unknown_token_id"
	keyPAD         = "tokenizer.ggml.padding_token_id"
	keyAddBOS      = "tokenizer.ggml.add_bos_token"
	keyAddEOS      = "tokenizer.ggml.add_eos_token"
	keySpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata. Keys that are absent take llama.cpp's defaults: for "llama"
// vocabularies BOS 1, EOS 2, UNK 0, add BOS, add a space prefix; for "gpt2"
// vocabularies BOS and EOS 11 (when in range), BOS added only for the Llama 3
// pre-tokenizers. A special-token id of 0xFFFFFFFF (or -1), which converters
// write for "none", also leaves the default in place, as llama.cpp does.
//
// It fails, naming the key, when the metadata is missing or inconsistent: no
// model or token list, a key of the wrong type, array lengths that differ
// from the token count, a special-token id out of range, or an unsupported
// model (the error lists the supported ones). Non-fatal findings, such as an
// unknown pre-tokenizer, are reported by Warnings.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	if f == nil {
		return nil, errors.New("tokenizer: nil GGUF file")
	}
	model, err := ggufString(f, keyModel)
	if err != nil {
		return nil, err
	}
	if model == "" {
		return nil, fmt.Errorf("tokenizer: GGUF file has no tokenizer (%s is missing)", keyModel)
	}
	var pre string
	switch model {
	case ModelSPM:
	case ModelBPE:
		if pre, err = ggufString(f, keyPre); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %s = %q (tamp supports %q, SentencePiece, and %q, byte-level BPE)", keyModel, model, ModelSPM, ModelBPE)
	}

	tokens, ok := f.Strings(keyTokens)
	if !ok {
		if _, present := f.Lookup(keyTokens); present {
			return nil, fmt.Errorf("tokenizer: %s is not an array of strings", keyTokens)
		}
		return nil, fmt.Errorf("tokenizer: GGUF file has no token list (%s is missing)", keyTokens)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: %s is empty", keyTokens)
	}
	v := DefaultVocab(model, pre, tokens)
	n := len(tokens)

	if _, present := f.Lookup(keyScores); present {
		if s, ok := f.Float32s(keyScores); ok {
			v.Scores = s
		} else if is, ok := f.Int32s(keyScores); ok {
			// llama.cpp also accepts integer scores.
			v.Scores = make([]float32, len(is))
			for i, x := range is {
				v.Scores[i] = float32(x)
			}
		} else {
			return nil, fmt.Errorf("tokenizer: %s is not an array of numbers", keyScores)
		}
		if len(v.Scores) != n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(v.Scores), n)
		}
	}
	if _, present := f.Lookup(keyTypes); present {
		ts, ok := f.Int32s(keyTypes)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s is not an array of int32", keyTypes)
		}
		if len(ts) != n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTypes, len(ts), n)
		}
		v.Types = make([]TokenType, n)
		for i, x := range ts {
			v.Types[i] = TokenType(x)
		}
	}
	if model == ModelBPE {
		merges, ok := f.Strings(keyMerges)
		if !ok {
			if _, present := f.Lookup(keyMerges); present {
				return nil, fmt.Errorf("tokenizer: %s is not an array of strings", keyMerges)
			}
			return nil, fmt.Errorf("tokenizer: BPE vocabulary has no merges (%s is missing)", keyMerges)
		}
		v.Merges = merges
	}

	for _, sp := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyEOT, &v.EOT}, {keyEOM, &v.EOM}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		if err := ggufTokenID(f, sp.key, n, sp.id); err != nil {
			return nil, err
		}
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{keyAddBOS, &v.AddBOS}, {keyAddEOS, &v.AddEOS}, {keySpacePrefix, &v.AddSpacePrefix}} {
		if err := ggufBool(f, b.key, b.dst); err != nil {
			return nil, err
		}
	}
	if v.AddBOS && v.BOS == NoToken {
		return nil, fmt.Errorf("tokenizer: %s is true, but %s is not set", keyAddBOS, keyBOS)
	}
	if v.AddEOS && v.EOS == NoToken {
		return nil, fmt.Errorf("tokenizer: %s is true, but %s is not set", keyAddEOS, keyEOS)
	}
	return New(v)
}

// DefaultVocab returns a Vocab for model holding tokens and llama.cpp's
// defaults for everything else: for "llama" (SentencePiece) BOS 1, EOS 2,
// UNK 0, add BOS, add a space prefix; for "gpt2" (BPE) BOS and EOS 11, BOS
// added only by the Llama 3 pre-tokenizers (pre). Default ids outside the
// vocabulary become NoToken, and so do PAD, EOT and EOM. Start from it
// rather than from a Vocab literal, whose zero ids would all name token 0.
func DefaultVocab(model, pre string, tokens []string) Vocab {
	v := Vocab{Model: model, Pre: pre, Tokens: tokens,
		BOS: NoToken, EOS: NoToken, UNK: NoToken, PAD: NoToken, EOT: NoToken, EOM: NoToken}
	switch model {
	case ModelSPM:
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case ModelBPE:
		v.BOS, v.EOS = 11, 11
		if info, ok := lookupPre(pre); ok {
			v.AddBOS = info.addBOS
			if info.noBOS {
				v.BOS = NoToken
			}
		}
	}
	for _, id := range []*int32{&v.BOS, &v.EOS, &v.UNK} {
		if int(*id) >= len(tokens) {
			*id = NoToken
		}
	}
	if v.AddBOS && v.BOS == NoToken {
		v.AddBOS = false
	}
	return v
}

// ggufString reads an optional string key: "" when absent, an error when it
// has another type.
func ggufString(f *gguf.File, key string) (string, error) {
	val, present := f.Lookup(key)
	if !present {
		return "", nil
	}
	s, ok := f.String(key)
	if !ok {
		return "", fmt.Errorf("tokenizer: %s has type %v, want string", key, val.Type)
	}
	return s, nil
}

func ggufBool(f *gguf.File, key string, dst *bool) error {
	val, present := f.Lookup(key)
	if !present {
		return nil
	}
	b, ok := f.Bool(key)
	if !ok {
		return fmt.Errorf("tokenizer: %s has type %v, want bool", key, val.Type)
	}
	*dst = b
	return nil
}

// ggufTokenID reads an optional token-id key into *dst, keeping *dst when
// the key is absent or holds the "none" marker 0xFFFFFFFF / -1.
func ggufTokenID(f *gguf.File, key string, n int, dst *int32) error {
	val, present := f.Lookup(key)
	if !present {
		return nil
	}
	id, ok := f.Int(key)
	if !ok {
		if u, isUint := f.Uint(key); isUint {
			return fmt.Errorf("tokenizer: %s = %d is out of range for a vocabulary of %d tokens", key, u, n)
		}
		return fmt.Errorf("tokenizer: %s has type %v, want an integer", key, val.Type)
	}
	if id == -1 || id == math.MaxUint32 {
		return nil
	}
	if id < 0 || id >= int64(n) {
		return fmt.Errorf("tokenizer: %s = %d is out of range for a vocabulary of %d tokens", key, id, n)
	}
	*dst = int32(id)
	return nil
}
