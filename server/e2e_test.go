package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"tamp/chat"
	"tamp/engine"
	"tamp/sample"
)

// TestOpenAIClient talks to the server with OpenAI's official Go client:
// completions and chat, plain and streaming, must give exactly the text
// `tamp run` gives for the same prompt at temperature 0.
func TestOpenAIClient(t *testing.T) {
	const ctxLen, maxTokens = 256, 64
	e := openEngine(t)
	ts := start(t, Config{Engine: e, Context: ctxLen, Parallel: 2, APIKey: "sekrit"})
	client := openai.NewClient(option.WithBaseURL(ts.url+"/v1/"), option.WithAPIKey("sekrit"), option.WithMaxRetries(0))
	ctx := context.Background()

	const prompt = "Once upon a time"
	want := greedyText(t, e, prompt, maxTokens, ctxLen)
	if want == "" {
		t.Fatal("the reference generation is empty")
	}
	completion := openai.CompletionNewParams{
		Model:       modelID,
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	}

	t.Run("completion", func(t *testing.T) {
		c, err := client.Completions.New(ctx, completion)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 {
			t.Fatalf("%d choices, want 1", len(c.Choices))
		}
		if got := c.Choices[0].Text; got != want {
			t.Errorf("server gave\n%q\ntamp run gives\n%q", got, want)
		}
		if c.Choices[0].FinishReason != "length" {
			t.Errorf("finish_reason %q, want length", c.Choices[0].FinishReason)
		}
		if c.Usage.PromptTokens != int64(len(e.Encode(prompt))) || c.Usage.CompletionTokens != maxTokens ||
			c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
			t.Errorf("usage %+v, want %d prompt and %d completion tokens", c.Usage, len(e.Encode(prompt)), maxTokens)
		}
		if c.Model != modelID || c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") {
			t.Errorf("model %q object %q id %q", c.Model, c.Object, c.ID)
		}
	})

	t.Run("completion stream", func(t *testing.T) {
		stream := client.Completions.NewStreaming(ctx, completion)
		var sb strings.Builder
		finish := ""
		for stream.Next() {
			ch := stream.Current()
			for _, c := range ch.Choices {
				sb.WriteString(c.Text)
				if c.FinishReason != "" {
					finish = string(c.FinishReason)
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if sb.String() != want {
			t.Errorf("stream gave\n%q\nwant\n%q", sb.String(), want)
		}
		if finish != "length" {
			t.Errorf("finish_reason %q, want length", finish)
		}
	})

	// The chat reference: the conversation rendered with the server's
	// template, tokenized as a chat prompt, then generated greedily.
	messages := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("You tell stories."),
		openai.UserMessage("Tell me about a cat."),
	}
	rendered, err := ts.ChatTemplate().Render([]chat.Message{{Role: "system", Content: "You tell stories."}, {Role: "user", Content: "Tell me about a cat."}}, true)
	if err != nil {
		t.Fatal(err)
	}
	chatTokens := chat.Encode(e.Tok, rendered)
	var ref strings.Builder
	p := sample.DefaultParams()
	p.Temperature = 0
	if _, err := e.GenerateTokens(ctx, chatTokens, engine.GenerateOptions{MaxTokens: maxTokens, Context: ctxLen, Sampling: p,
		OnText: func(s string) error { ref.WriteString(s); return nil }}); err != nil {
		t.Fatal(err)
	}
	wantChat := ref.String()
	chatParams := openai.ChatCompletionNewParams{
		Model:       modelID,
		Messages:    messages,
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	}

	t.Run("chat", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, chatParams)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 {
			t.Fatalf("%d choices", len(c.Choices))
		}
		m := c.Choices[0].Message
		if m.Content != wantChat {
			t.Errorf("chat gave\n%q\nwant\n%q", m.Content, wantChat)
		}
		if m.Role != "assistant" || c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Errorf("role %q object %q id %q", m.Role, c.Object, c.ID)
		}
		if c.Usage.PromptTokens != int64(len(chatTokens)) {
			t.Errorf("prompt_tokens %d, want %d", c.Usage.PromptTokens, len(chatTokens))
		}
	})

	t.Run("chat stream", func(t *testing.T) {
		sp := chatParams
		sp.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, sp)
		acc := openai.ChatCompletionAccumulator{}
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(acc.Choices) != 1 {
			t.Fatalf("%d choices accumulated", len(acc.Choices))
		}
		if got := acc.Choices[0].Message.Content; got != wantChat {
			t.Errorf("stream gave\n%q\nwant\n%q", got, wantChat)
		}
		if acc.Choices[0].FinishReason != "length" {
			t.Errorf("finish_reason %q", acc.Choices[0].FinishReason)
		}
		if acc.Usage.CompletionTokens != maxTokens || acc.Usage.PromptTokens != int64(len(chatTokens)) {
			t.Errorf("usage %+v", acc.Usage)
		}
		if chunks < 3 {
			t.Errorf("only %d chunks: the reply was not streamed", chunks)
		}
	})

	t.Run("stop string", func(t *testing.T) {
		i := strings.Index(want, "Lily")
		if i < 0 {
			t.Fatalf("reference text %q lacks the stop string", want)
		}
		sp := completion
		sp.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: []string{"Lily", "never appears"}}
		c, err := client.Completions.New(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Choices[0].Text; got != want[:i] || c.Choices[0].FinishReason != "stop" {
			t.Errorf("text %q (%s), want %q (stop)", got, c.Choices[0].FinishReason, want[:i])
		}
		stream := client.Completions.NewStreaming(ctx, sp)
		var sb strings.Builder
		for stream.Next() {
			for _, c := range stream.Current().Choices {
				sb.WriteString(c.Text)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if sb.String() != want[:i] {
			t.Errorf("stream with stop gave %q, want %q", sb.String(), want[:i])
		}
	})

	t.Run("n choices", func(t *testing.T) {
		sp := completion
		sp.N = openai.Int(3)
		sp.Temperature = openai.Float(1)
		sp.Seed = openai.Int(7)
		sp.MaxTokens = openai.Int(24)
		c, err := client.Completions.New(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 3 {
			t.Fatalf("%d choices, want 3", len(c.Choices))
		}
		// Choice i is seeded with seed+i: the same as a request for one
		// choice with that seed.
		for i, ch := range c.Choices {
			if ch.Index != int64(i) {
				t.Errorf("choice %d has index %d", i, ch.Index)
			}
			one := completion
			one.Temperature = openai.Float(1)
			one.Seed = openai.Int(7 + int64(i))
			one.MaxTokens = openai.Int(24)
			single, err := client.Completions.New(ctx, one)
			if err != nil {
				t.Fatal(err)
			}
			if single.Choices[0].Text != ch.Text {
				t.Errorf("choice %d: %q, but seed %d alone gives %q", i, ch.Text, 7+i, single.Choices[0].Text)
			}
		}
		if c.Choices[0].Text == c.Choices[1].Text && c.Choices[1].Text == c.Choices[2].Text {
			t.Errorf("three sampled choices are identical: %q", c.Choices[0].Text)
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != modelID {
			t.Errorf("models %+v, want just %s", page.Data, modelID)
		}
		m, err := client.Models.Get(ctx, modelID)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != modelID {
			t.Errorf("model %q", m.ID)
		}
	})

	t.Run("errors reach the client", func(t *testing.T) {
		bad := openai.NewClient(option.WithBaseURL(ts.url+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
		_, err := bad.Completions.New(ctx, completion)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
			t.Errorf("wrong key: err = %v, want a 401 API error", err)
		}
		other := completion
		other.Model = "gpt-4"
		_, err = client.Completions.New(ctx, other)
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("unknown model: err = %v, want 404 model_not_found", err)
		}
	})
}
