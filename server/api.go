package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"tamp/kv"
)

// Limits on request fields that do not depend on the model or the server's
// configuration.
const (
	maxChoices    = 16  // n × number of prompts
	maxStops      = 8   // OpenAI allows 4; llama.cpp more
	maxStopBytes  = 256 // per stop string
	maxMessages   = 4096
	maxRepeatLast = 1 << 16
)

// Sampling holds the generation fields the completion and chat endpoints
// share. Pointer fields are nil when the request leaves them out, which
// selects llama.cpp's defaults (sample.DefaultParams), not OpenAI's.
type Sampling struct {
	// MaxTokens bounds the tokens generated per choice; default: until the
	// context is full, within the server's cap.
	MaxTokens *int `json:"max_tokens"`
	// Temperature in [0, 2]; 0 is greedy decoding.
	Temperature *float64 `json:"temperature"`
	// TopP in (0, 1].
	TopP *float64 `json:"top_p"`
	// TopK, MinP, RepeatPenalty and RepeatLastN are llama.cpp's extensions.
	TopK          *int     `json:"top_k"`
	MinP          *float64 `json:"min_p"`
	RepeatPenalty *float64 `json:"repeat_penalty"`
	RepeatLastN   *int     `json:"repeat_last_n"`
	// PresencePenalty and FrequencyPenalty are accepted only as 0: tamp's
	// sampler has a repetition penalty instead.
	PresencePenalty  *float64 `json:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	// Stop lists strings that end a choice; they are not part of its text.
	Stop Stop `json:"stop"`
	// Seed fixes the sampler's random numbers; choice i uses Seed+i. Absent
	// or -1 picks a seed at random.
	Seed *int64 `json:"seed"`
	// N is the number of choices per prompt (default 1).
	N *int `json:"n"`
	// Stream sends the result as server-sent events.
	Stream        bool           `json:"stream"`
	StreamOptions *StreamOptions `json:"stream_options"`
	// User is accepted and ignored.
	User string `json:"user"`
	// Tamp holds tamp's own options.
	Tamp *TampOptions `json:"tamp"`
}

// StreamOptions are OpenAI's streaming options.
type StreamOptions struct {
	// IncludeUsage adds a last chunk, with no choices, carrying the usage.
	IncludeUsage bool `json:"include_usage"`
	// IncludeObfuscation is accepted and ignored: tamp pads nothing.
	IncludeObfuscation bool `json:"include_obfuscation"`
}

// TampOptions is the "tamp" object of a request: per-request KV-cache
// choices. Absent fields take the server's defaults.
type TampOptions struct {
	// KVType is the KV-cache element type, "f16" or "f32".
	KVType string `json:"kv_type"`
	// KV names a KV-cache compression policy ("full" keeps everything).
	KV string `json:"kv"`
	// KVBudget is the number of cache entries per head the policy keeps.
	KVBudget *int `json:"kv_budget"`
	// KVBits is the precision a quantizing policy stores entries at.
	KVBits *int `json:"kv_bits"`
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	// Model must name the served model, or be empty.
	Model string `json:"model"`
	// Prompt is required.
	Prompt Prompt `json:"prompt"`
	Sampling
}

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	// Model must name the served model, or be empty.
	Model string `json:"model"`
	// Messages is the conversation so far, rendered with the model's chat
	// template; the reply is the assistant's next turn.
	Messages []Message `json:"messages"`
	// MaxCompletionTokens is OpenAI's newer name for max_tokens; it wins
	// when both are given.
	MaxCompletionTokens *int `json:"max_completion_tokens"`
	Sampling
}

// Message is one chat message.
type Message struct {
	// Role is "system", "developer" (treated as system), "user" or
	// "assistant".
	Role string `json:"role"`
	// Content is the message's text.
	Content Content `json:"content"`
	// Name is accepted and ignored.
	Name string `json:"name,omitempty"`
}

// Content is a message's text: a JSON string, null, or a list of
// {"type": "text", "text": …} parts, which are concatenated.
type Content string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Content) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*c = ""
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content(s)
		return nil
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := strictUnmarshal(b, &parts); err != nil {
			return fmt.Errorf("message content: %w", err)
		}
		var sb strings.Builder
		for _, p := range parts {
			if p.Type != "text" {
				return fmt.Errorf("message content: only text parts are supported, got type %q", p.Type)
			}
			sb.WriteString(p.Text)
		}
		*c = Content(sb.String())
		return nil
	}
	return fmt.Errorf("message content must be a string or a list of text parts")
}

// Prompt is a completion prompt: a string, a list of strings (one choice set
// each), a list of token ids, or a list of such lists.
type Prompt struct {
	// Texts are prompts given as text, tokenized as `tamp run` does.
	Texts []string
	// Tokens are prompts given as token ids, used as they are.
	Tokens [][]int32
}

// Len is the number of prompts.
func (p Prompt) Len() int { return len(p.Texts) + len(p.Tokens) }

// UnmarshalJSON implements json.Unmarshaler.
func (p *Prompt) UnmarshalJSON(b []byte) error {
	*p = Prompt{}
	switch firstByte(b) {
	case 'n':
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		p.Texts = []string{s}
		return nil
	case '[':
	default:
		return fmt.Errorf("prompt must be a string, a list of strings, or a list of token ids")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return err
	}
	if len(items) == 0 {
		return fmt.Errorf("prompt is an empty list")
	}
	switch firstByte(items[0]) {
	case '"':
		if err := json.Unmarshal(b, &p.Texts); err != nil {
			return fmt.Errorf("prompt: a list must hold only strings or only token ids")
		}
	case '[':
		if err := json.Unmarshal(b, &p.Tokens); err != nil {
			return fmt.Errorf("prompt: a list of token lists must hold integer token ids")
		}
	default:
		var ids []int32
		if err := json.Unmarshal(b, &ids); err != nil {
			return fmt.Errorf("prompt: a list must hold only strings or only integer token ids")
		}
		p.Tokens = [][]int32{ids}
	}
	return nil
}

// Stop is a request's stop strings: one string or a list of them.
type Stop []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *Stop) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*s = nil
		return nil
	case '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	case '[':
		var list []string
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("stop must be a string or a list of strings")
		}
		*s = list
		return nil
	}
	return fmt.Errorf("stop must be a string or a list of strings")
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeJSON reads one JSON object into v, strictly: unknown fields, a
// second value or trailing data are errors, as are values of the wrong type.
func decodeJSON(body []byte, v any) *APIError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "invalid_json", "request body is empty: want a JSON object")
	}
	if firstByte(body) != '{' {
		return badRequest("", "invalid_json", "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "invalid_json", "malformed JSON: unexpected data after the request object")
	}
	return nil
}

func jsonError(err error) *APIError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("", "invalid_json", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "invalid_json", "malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("", "invalid_type", "request body must be a JSON object")
		}
		field := strings.ReplaceAll(typ.Field, "Sampling.", "")
		return badRequest(field, "invalid_type", "field %q must be %s, not a JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(name, "unknown_field", "unknown field %q: tamp does not support it", name)
	}
	return badRequest("", "invalid_request", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "int", "int32", "int64", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + k
}

// decodeCompletion parses and checks a completion request.
func decodeCompletion(body []byte) (*CompletionRequest, *APIError) {
	var r CompletionRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if r.Prompt.Len() == 0 {
		return nil, badRequest("prompt", "missing_field", "prompt is required")
	}
	for i, ids := range r.Prompt.Tokens {
		if len(ids) == 0 {
			return nil, badRequest("prompt", "invalid_prompt", "prompt %d is an empty list of tokens", i)
		}
	}
	if err := r.Sampling.check(r.Prompt.Len()); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeChat parses and checks a chat request.
func decodeChat(body []byte) (*ChatRequest, *APIError) {
	var r ChatRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if len(r.Messages) == 0 {
		return nil, badRequest("messages", "missing_field", "messages is required and must not be empty")
	}
	if len(r.Messages) > maxMessages {
		return nil, badRequest("messages", "invalid_messages", "%d messages; at most %d are accepted", len(r.Messages), maxMessages)
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		case "":
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "invalid_messages", "messages[%d] has no role", i)
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "invalid_messages", "messages[%d] has role %q: tamp accepts system, developer, user and assistant", i, m.Role)
		}
	}
	if r.MaxCompletionTokens != nil {
		r.MaxTokens = r.MaxCompletionTokens
	}
	if err := r.Sampling.check(1); err != nil {
		return nil, err
	}
	return &r, nil
}

// check validates the ranges of the sampling fields.
func (s *Sampling) check(prompts int) *APIError {
	inRange := func(name string, v *float64, lo, hi float64, loOpen bool) *APIError {
		if v == nil {
			return nil
		}
		x := *v
		if math.IsNaN(x) || x < lo || x > hi || (loOpen && x == lo) {
			open := "["
			if loOpen {
				open = "("
			}
			return badRequest(name, "invalid_value", "%s %v out of range %s%v, %v]", name, x, open, lo, hi)
		}
		return nil
	}
	for _, e := range []*APIError{
		inRange("temperature", s.Temperature, 0, 2, false),
		inRange("top_p", s.TopP, 0, 1, true),
		inRange("min_p", s.MinP, 0, 1, false),
		inRange("repeat_penalty", s.RepeatPenalty, 0, 100, true),
	} {
		if e != nil {
			return e
		}
	}
	if s.PresencePenalty != nil && *s.PresencePenalty != 0 {
		return badRequest("presence_penalty", "unsupported_value", "presence_penalty is not supported (only 0); use repeat_penalty")
	}
	if s.FrequencyPenalty != nil && *s.FrequencyPenalty != 0 {
		return badRequest("frequency_penalty", "unsupported_value", "frequency_penalty is not supported (only 0); use repeat_penalty")
	}
	if s.MaxTokens != nil && *s.MaxTokens < 1 {
		return badRequest("max_tokens", "invalid_value", "max_tokens must be at least 1, got %d", *s.MaxTokens)
	}
	if s.TopK != nil && *s.TopK < 0 {
		return badRequest("top_k", "invalid_value", "top_k must be >= 0 (0 = off), got %d", *s.TopK)
	}
	if s.RepeatLastN != nil && (*s.RepeatLastN < 0 || *s.RepeatLastN > maxRepeatLast) {
		return badRequest("repeat_last_n", "invalid_value", "repeat_last_n must be in [0, %d], got %d", maxRepeatLast, *s.RepeatLastN)
	}
	n := 1
	if s.N != nil {
		n = *s.N
	}
	if n < 1 || n*prompts > maxChoices {
		return badRequest("n", "invalid_value", "n = %d for %d prompt(s): want n >= 1 and at most %d choices in all", n, prompts, maxChoices)
	}
	if len(s.Stop) > maxStops {
		return badRequest("stop", "invalid_value", "%d stop strings; at most %d are accepted", len(s.Stop), maxStops)
	}
	for _, st := range s.Stop {
		if st == "" || len(st) > maxStopBytes {
			return badRequest("stop", "invalid_value", "stop strings must be 1 to %d bytes long, got %d", maxStopBytes, len(st))
		}
	}
	if t := s.Tamp; t != nil {
		if t.KVType != "" {
			if _, err := kv.ParseStorage(t.KVType); err != nil {
				return badRequest("tamp.kv_type", "invalid_value", "tamp.kv_type %q: want f16 or f32", t.KVType)
			}
		}
		var spec KVSpec
		spec.Policy = t.KV
		if t.KVBudget != nil {
			spec.Budget = *t.KVBudget
		}
		if t.KVBits != nil {
			spec.Bits = *t.KVBits
		}
		if err := checkKVShape(spec, t.KVBudget != nil, t.KVBits != nil); err != nil {
			return err
		}
	}
	return nil
}
