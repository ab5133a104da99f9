package chat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/tokenizer"
)

// conversation is the fixed conversation every template is tested with: a
// system message and two user turns around an assistant reply.
var conversation = []Message{
	{Role: "system", Content: "You are a helpful assistant."},
	{Role: "user", Content: "Hello!"},
	{Role: "assistant", Content: "Hi! How can I help?"},
	{Role: "user", Content: "Tell me a joke."},
}

func loadTemplate(t *testing.T, name string, opts Options) *Template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testdata.Dir(t), "chat-templates", name))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := New(string(src), opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tp
}

// TestKnownTemplates renders the fixed conversation with five model families'
// real templates and compares with the prompt each template is meant to give
// (as Hugging Face transformers renders it): role markers, BOS where the
// template prints it, and the generation prompt at the end.
func TestKnownTemplates(t *testing.T) {
	tests := []struct {
		file string
		opts Options
		want string
	}{
		{
			file: "meta-llama-Llama-3.1-8B-Instruct.jinja",
			opts: Options{BOS: "<|begin_of_text|>", EOS: "<|eot_id|>"},
			want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
				"Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
				"You are a helpful assistant.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			file: "Qwen-Qwen2.5-7B-Instruct.jinja",
			opts: Options{BOS: "<|endoftext|>", EOS: "<|im_end|>"},
			want: "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
				"<|im_start|>user\nHello!<|im_end|>\n" +
				"<|im_start|>assistant\nHi! How can I help?<|im_end|>\n" +
				"<|im_start|>user\nTell me a joke.<|im_end|>\n" +
				"<|im_start|>assistant\n",
		},
		{
			// Mistral puts the system message into the last user turn and has
			// no separate generation prompt: "[/INST]" is the cue.
			file: "mistralai-Mistral-Nemo-Instruct-2407.jinja",
			opts: Options{BOS: "<s>", EOS: "</s>"},
			want: "<s>[INST]Hello![/INST]Hi! How can I help?</s>" +
				"[INST]You are a helpful assistant.\n\nTell me a joke.[/INST]",
		},
		{
			// Phi-3.5's template prints no BOS; the tokenizer adds it.
			file: "microsoft-Phi-3.5-mini-instruct.jinja",
			opts: Options{BOS: "<s>", EOS: "<|endoftext|>"},
			want: "<|system|>\nYou are a helpful assistant.<|end|>\n" +
				"<|user|>\nHello!<|end|>\n" +
				"<|assistant|>\nHi! How can I help?<|end|>\n" +
				"<|user|>\nTell me a joke.<|end|>\n" +
				"<|assistant|>\n",
		},
		{
			// Gemma refuses system messages; the system text joins the first
			// user turn, and the assistant's role is "model".
			file: "google-gemma-2-2b-it.jinja",
			opts: Options{BOS: "<bos>", EOS: "<eos>"},
			want: "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n" +
				"<start_of_turn>model\nHi! How can I help?<end_of_turn>\n" +
				"<start_of_turn>user\nTell me a joke.<end_of_turn>\n" +
				"<start_of_turn>model\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tp := loadTemplate(t, tc.file, tc.opts)
			got, err := tp.Render(conversation, true)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("rendered\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestGenerationPrompt checks that add_generation_prompt is what adds the
// assistant cue, and only that.
func TestGenerationPrompt(t *testing.T) {
	tests := []struct {
		file, cue string
		opts      Options
	}{
		{"meta-llama-Llama-3.1-8B-Instruct.jinja", "<|start_header_id|>assistant<|end_header_id|>\n\n", Options{BOS: "<|begin_of_text|>"}},
		{"Qwen-Qwen2.5-7B-Instruct.jinja", "<|im_start|>assistant\n", Options{}},
		{"microsoft-Phi-3.5-mini-instruct.jinja", "<|assistant|>\n", Options{EOS: "<|endoftext|>"}},
		{"google-gemma-2-2b-it.jinja", "<start_of_turn>model\n", Options{BOS: "<bos>"}},
	}
	msgs := conversation[:2]
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tp := loadTemplate(t, tc.file, tc.opts)
			with, err := tp.Render(msgs, true)
			if err != nil {
				t.Fatal(err)
			}
			without, err := tp.Render(msgs, false)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(with, tc.cue) {
				t.Errorf("with generation prompt: %q does not end with %q", with, tc.cue)
			}
			if strings.HasSuffix(without, tc.cue) {
				t.Errorf("without generation prompt: %q ends with the cue %q", without, tc.cue)
			}
		})
	}
}

// TestAllTemplatesRender renders the conversation with every template in the
// shared test data: each must compile, accept it, and show every message's
// text.
func TestAllTemplatesRender(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata.Dir(t), "chat-templates", "*.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no chat templates found in the test data")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			tp := loadTemplate(t, name, Options{BOS: "<BOS>", EOS: "<EOS>"})
			got, err := tp.Render(conversation, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range conversation {
				if !strings.Contains(got, m.Content) {
					t.Errorf("%s content %q missing from\n%s", m.Role, m.Content, got)
				}
			}
		})
	}
}

// TestLlama3Family checks the markers of the other Llama 3 templates, whose
// date line depends on the day (3.2 prints today's date).
func TestLlama3Family(t *testing.T) {
	for _, name := range []string{"meta-llama-Llama-3.2-3B-Instruct.jinja", "meta-llama-Llama-3.3-70B-Instruct.jinja"} {
		t.Run(name, func(t *testing.T) {
			tp := loadTemplate(t, name, Options{BOS: "<|begin_of_text|>", EOS: "<|eot_id|>"})
			got, err := tp.Render(conversation, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"<|start_header_id|>system<|end_header_id|>\n\n",
				"You are a helpful assistant.<|eot_id|>",
				"<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
				"<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("missing %q in\n%q", want, got)
				}
			}
			if !strings.HasPrefix(got, "<|begin_of_text|>") || strings.Count(got, "<|begin_of_text|>") != 1 {
				t.Errorf("want exactly one BOS, at the start: %q", got)
			}
			if !strings.HasSuffix(got, "<|start_header_id|>assistant<|end_header_id|>\n\n") {
				t.Errorf("no generation prompt at the end: %q", got)
			}
		})
	}
}

// TestTemplateRefusals checks that a conversation a template rejects with
// raise_exception comes back as an ErrRender error carrying its message.
func TestTemplateRefusals(t *testing.T) {
	tests := []struct {
		file string
		msgs []Message
		want string
	}{
		{"google-gemma-2-2b-it.jinja", []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, "alternate"},
		{"mistralai-Mistral-Nemo-Instruct-2407.jinja", []Message{{Role: "assistant", Content: "a"}}, "alternate"},
		{"mistralai-Mistral-Nemo-Instruct-2407.jinja", []Message{{Role: "user", Content: "a"}, {Role: "robot", Content: "b"}}, "roles are supported"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tp := loadTemplate(t, tc.file, Options{})
			_, err := tp.Render(tc.msgs, true)
			if !errors.Is(err, ErrRender) {
				t.Fatalf("err = %v, want ErrRender", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSystemSupportDetection(t *testing.T) {
	tests := []struct {
		file   string
		inline bool
	}{
		{"google-gemma-2-2b-it.jinja", true},
		{"Qwen-Qwen2.5-7B-Instruct.jinja", false},
		{"meta-llama-Llama-3.1-8B-Instruct.jinja", false},
		{"mistralai-Mistral-Nemo-Instruct-2407.jinja", false},
	}
	for _, tc := range tests {
		tp := loadTemplate(t, tc.file, Options{})
		if tp.SystemInline() != tc.inline {
			t.Errorf("%s: SystemInline = %v, want %v", tc.file, tp.SystemInline(), tc.inline)
		}
	}
}

func TestInlineSystem(t *testing.T) {
	tests := []struct {
		name string
		in   []Message
		want []Message
	}{
		{"none", []Message{{"user", "u"}}, []Message{{"user", "u"}}},
		{"one", []Message{{"system", "s"}, {"user", "u"}, {"assistant", "a"}}, []Message{{"user", "s\n\nu"}, {"assistant", "a"}}},
		{"two", []Message{{"system", "s1"}, {"system", "s2"}, {"user", "u"}}, []Message{{"user", "s1\n\ns2\n\nu"}}},
		{"alone", []Message{{"system", "s"}}, []Message{{"user", "s"}}},
		{"before assistant", []Message{{"system", "s"}, {"assistant", "a"}}, []Message{{"user", "s"}, {"assistant", "a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := inlineSystem(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestFallback(t *testing.T) {
	tp, err := New(Fallback, Options{BOS: "<s>"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.Render(conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|system|>\nYou are a helpful assistant.\n<|user|>\nHello!\n<|assistant|>\nHi! How can I help?\n<|user|>\nTell me a joke.\n<|assistant|>\n"
	if got != want {
		t.Errorf("fallback rendered\n%q\nwant\n%q", got, want)
	}
	if tp.SystemInline() {
		t.Error("the fallback keeps system messages as they are")
	}
}

func TestBadTemplate(t *testing.T) {
	for _, src := range []string{"{% for m in messages %}", "{{ messages[ }}", "{{ 'unterminated }}"} {
		if _, err := New(src, Options{}); err == nil {
			t.Errorf("New(%q) succeeded, want a compile error", src)
		}
	}
}

func openVocab(t *testing.T) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, "tokenizers/ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFromGGUF(t *testing.T) {
	t.Run("absent", func(t *testing.T) {
		f := openVocab(t)
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := FromGGUF(f, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !tp.IsFallback() || tp.Source() != Fallback {
			t.Error("a file without a template should get the fallback")
		}
	})
	t.Run("present", func(t *testing.T) {
		f := openVocab(t)
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		f.Set(TemplateKey, gguf.String("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"))
		tp, err := FromGGUF(f, tok)
		if err != nil {
			t.Fatal(err)
		}
		if tp.IsFallback() {
			t.Fatal("the file's template was ignored")
		}
		got, err := tp.Render([]Message{{Role: "user", Content: "hi"}}, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := "<s>[user]hi</s>"; got != want {
			t.Errorf("got %q, want %q (BOS and EOS texts from the vocabulary)", got, want)
		}
	})
	t.Run("broken", func(t *testing.T) {
		f := openVocab(t)
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		f.Set(TemplateKey, gguf.String("{% for m in messages %}"))
		if _, err := FromGGUF(f, tok); err == nil || !strings.Contains(err.Error(), TemplateKey) {
			t.Errorf("err = %v, want a compile error naming %s", err, TemplateKey)
		}
		f.Set(TemplateKey, gguf.Uint32(7))
		if _, err := FromGGUF(f, tok); err == nil || !strings.Contains(err.Error(), "not a string") {
			t.Errorf("err = %v, want a type error", err)
		}
	})
}

// TestEncode checks that a rendered prompt starts with exactly one BOS whether
// or not the template printed it, and that control-token texts become tokens.
func TestEncode(t *testing.T) {
	f := openVocab(t)
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	bos, eos := tok.BOS(), tok.EOS()
	for _, prompt := range []string{"<s>[INST] Hi [/INST]", "[INST] Hi [/INST]"} {
		ids := Encode(tok, prompt)
		n := 0
		for _, id := range ids {
			if id == bos {
				n++
			}
		}
		if len(ids) == 0 || ids[0] != bos || n != 1 {
			t.Errorf("Encode(%q) = %v: want exactly one BOS (%d), first", prompt, ids, bos)
		}
	}
	ids := Encode(tok, "Hi</s>")
	if ids[len(ids)-1] != eos {
		t.Errorf("Encode(%q) = %v: the EOS text should become token %d", "Hi</s>", ids, eos)
	}
}
