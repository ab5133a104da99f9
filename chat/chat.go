// Package chat turns a conversation into the prompt text a model was trained
// on, using the Jinja chat template its GGUF file carries under
// tokenizer.chat_template, as llama.cpp, Ollama and Hugging Face's
// transformers do.
//
// Templates are rendered with github.com/ardanlabs/jinja, a pure-Go Jinja
// implementation written for chat templates. A template sees the variables
// transformers passes: messages (a list of {role, content}),
// add_generation_prompt, bos_token and eos_token.
//
// Some templates (Gemma's) refuse a system message. New finds this out by
// rendering a probe conversation, and Render then does what llama.cpp does for
// such templates: it prepends the system text, followed by a blank line, to
// the first user message.
//
// A model without a template gets Fallback, a plain format documented there.
package chat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"

	"tamp/gguf"
	"tamp/tokenizer"
)

// TemplateKey is the GGUF metadata key holding a model's default chat
// template.
const TemplateKey = "tokenizer.chat_template"

// Fallback is the template used for models whose file has none. Each
// message becomes a line "<|ROLE|>" followed by its content on the next line,
// and the generation prompt is "<|assistant|>" and a newline:
//
//	<|system|>
//	You are terse.
//	<|user|>
//	Hello
//	<|assistant|>
//
// It carries no BOS: the tokenizer adds one when the vocabulary asks for it.
// The markers are plain text to a model that was not trained on them, so a
// base model continues such a transcript as best it can; an instruction-tuned
// model should be served with its own template.
const Fallback = `{%- for message in messages -%}
<|{{ message.role }}|>
{{ message.content }}
{% endfor -%}
{%- if add_generation_prompt -%}
<|assistant|>
{% endif -%}`

// Message is one turn of a conversation.
type Message struct {
	// Role is "system", "user" or "assistant" (templates may know others).
	Role string
	// Content is the turn's text.
	Content string
}

// Options gives a template the special-token texts it may print.
type Options struct {
	// BOS and EOS are the texts of the vocabulary's beginning- and
	// end-of-sequence tokens, passed as bos_token and eos_token.
	BOS, EOS string
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	src          string
	t            *jinja.Template
	opts         Options
	fallback     bool
	systemInline bool // the template refuses system messages: merge them into the first user turn
}

// ErrRender is wrapped by every error Render returns for a conversation the
// template refuses (its raise_exception calls, such as "roles must
// alternate") or cannot render.
var ErrRender = errors.New("chat template")

// New compiles a template.
func New(source string, opts Options) (*Template, error) {
	t, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("chat: template does not compile: %w", err)
	}
	tp := &Template{src: source, t: t, opts: opts}
	tp.systemInline = !tp.acceptsSystem()
	return tp, nil
}

// FromGGUF returns the template of a model file, or Fallback when the file
// has none. A template that is present but does not compile is an error
// naming the key: serving such a model with a guessed format would quietly
// give wrong prompts.
func FromGGUF(f *gguf.File, tok *tokenizer.Tokenizer) (*Template, error) {
	opts := Options{BOS: specialText(tok, tok.BOS()), EOS: specialText(tok, tok.EOS())}
	if _, present := f.Lookup(TemplateKey); present {
		if _, ok := f.String(TemplateKey); !ok {
			return nil, fmt.Errorf("chat: %s is not a string", TemplateKey)
		}
	}
	src, _ := f.String(TemplateKey)
	if strings.TrimSpace(src) == "" {
		t, err := New(Fallback, opts)
		if err != nil {
			return nil, err
		}
		t.fallback = true
		return t, nil
	}
	t, err := New(src, opts)
	if err != nil {
		return nil, fmt.Errorf("chat: %s of %d bytes: %w", TemplateKey, len(src), err)
	}
	return t, nil
}

func specialText(tok *tokenizer.Tokenizer, id int32) string {
	if id < 0 {
		return ""
	}
	return tok.Text(id)
}

// IsFallback reports whether the template is Fallback because the model
// file has none.
func (t *Template) IsFallback() bool { return t.fallback }

// Source is the template's Jinja text.
func (t *Template) Source() string { return t.src }

// SystemInline reports whether the template refuses system messages, so
// Render folds them into the first user message.
func (t *Template) SystemInline() bool { return t.systemInline }

// acceptsSystem renders a probe conversation with a system message and
// reports whether its text survives: Gemma's template raises an exception
// instead, and a template that silently dropped it would lose instructions.
func (t *Template) acceptsSystem() bool {
	const probe = "tamp-system-probe-7f3a"
	out, err := t.render([]Message{{Role: "system", Content: probe}, {Role: "user", Content: "hi"}}, true)
	return err == nil && strings.Contains(out, probe)
}

// Render returns the prompt for msgs. addGenerationPrompt appends the
// template's cue for the assistant's reply (such as
// "<|im_start|>assistant\n"); a server always sets it.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if t.systemInline {
		msgs = inlineSystem(msgs)
	}
	return t.render(msgs, addGenerationPrompt)
}

func (t *Template) render(msgs []Message, addGenerationPrompt bool) (out string, err error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	// A template is code from a model file: whatever it trips over in the
	// renderer must become an error for this request, not a crashed server.
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("%w: renderer failed: %v", ErrRender, r)
		}
	}()
	out, err = t.t.Render(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.opts.BOS,
		"eos_token":             t.opts.EOS,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRender, err)
	}
	return out, nil
}

// inlineSystem folds leading system messages into the first user message, as
// llama.cpp does for templates without a system role.
func inlineSystem(msgs []Message) []Message {
	var sys []string
	i := 0
	for ; i < len(msgs) && msgs[i].Role == "system"; i++ {
		sys = append(sys, msgs[i].Content)
	}
	if len(sys) == 0 {
		return msgs
	}
	rest := msgs[i:]
	prefix := strings.Join(sys, "\n\n")
	if len(rest) > 0 && rest[0].Role == "user" {
		out := append([]Message{{Role: "user", Content: prefix + "\n\n" + rest[0].Content}}, rest[1:]...)
		return out
	}
	return append([]Message{{Role: "user", Content: prefix}}, rest...)
}

// Encode tokenizes a rendered prompt. Control-token texts in it (such as
// "<|im_start|>") become their tokens. BOS is added when the vocabulary asks
// for it, unless the template already put the BOS text first: either way the
// prompt starts with exactly one BOS.
func Encode(tok *tokenizer.Tokenizer, prompt string) []int32 {
	if bos := specialText(tok, tok.BOS()); bos != "" && strings.HasPrefix(prompt, bos) {
		return tok.Encode(prompt, false, true)
	}
	return tok.Encode(prompt, true, true)
}
