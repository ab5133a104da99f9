package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"tamp/chat"
	"tamp/engine"
	"tamp/model"
	"tamp/sample"
)

// job is a validated generation request: its prompts, already tokenized,
// and everything a slot needs to run its choices.
type job struct {
	chat       bool
	endpoint   string
	id         string
	created    int64
	model      string
	prompts    [][]int32
	n          int // choices per prompt
	maxTokens  int
	params     sample.Params
	stops      []string
	kv         KVSpec
	policy     KVPolicy
	stream     bool
	usageChunk bool
}

// Usage counts a response's tokens. Prompt tokens are counted once per
// prompt, however many choices it has.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *Usage             `json:"usage,omitempty"`
}

type chatMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int          `json:"index"`
	Message      *chatMessage `json:"message,omitempty"`
	Delta        *chatMessage `json:"delta,omitempty"`
	Logprobs     *struct{}    `json:"logprobs"`
	FinishReason *string      `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &APIError{Status: http.StatusInternalServerError, Type: "server_error", Message: "encoding the response: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	body, apiErr := s.readBody(w, r)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	req, apiErr := decodeCompletion(body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if apiErr := s.checkModel(req.Model); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	var prompts [][]int32
	for _, t := range req.Prompt.Texts {
		prompts = append(prompts, s.e.Encode(t))
	}
	vocab := int32(s.e.Tok.VocabSize())
	for i, ids := range req.Prompt.Tokens {
		for _, id := range ids {
			if id < 0 || id >= vocab {
				writeError(w, badRequest("prompt", "invalid_prompt", "prompt %d: token id %d is outside the vocabulary [0, %d)", i, id, vocab))
				return
			}
		}
		prompts = append(prompts, ids)
	}
	j, apiErr := s.newJob(&req.Sampling, prompts, "prompt")
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	j.endpoint, j.id = "/v1/completions", newID("cmpl-")
	s.serveJob(w, r, j)
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	body, apiErr := s.readBody(w, r)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	req, apiErr := decodeChat(body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if apiErr := s.checkModel(req.Model); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" { // OpenAI's newer name for the system role
			role = "system"
		}
		msgs[i] = chat.Message{Role: role, Content: string(m.Content)}
	}
	text, err := s.tmpl.Render(msgs, true)
	if err != nil {
		writeError(w, badRequest("messages", "chat_template_error", "the model's chat template refused the conversation: %v", err))
		return
	}
	j, apiErr := s.newJob(&req.Sampling, [][]int32{chat.Encode(s.e.Tok, text)}, "messages")
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	j.chat, j.endpoint, j.id = true, "/v1/chat/completions", newID("chatcmpl-")
	s.serveJob(w, r, j)
}

// newJob checks a request's prompts and options against the model and the
// server's limits.
// param names the request field holding the prompt, for errors.
func (s *Server) newJob(sm *Sampling, prompts [][]int32, param string) (*job, *APIError) {
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, badRequest(param, "invalid_prompt", "prompt %d is empty and the vocabulary adds no BOS token", i)
		}
		if len(p) >= s.ctxLen {
			which := "the prompt"
			if len(prompts) > 1 {
				which = fmt.Sprintf("prompt %d", i)
			}
			return nil, badRequest(param, "context_length_exceeded",
				"this model's context is %d tokens, but %s is %d tokens: shorten it to at most %d so that one token can be generated",
				s.ctxLen, which, len(p), s.ctxLen-1)
		}
	}
	j := &job{prompts: prompts, n: 1, maxTokens: s.cfg.MaxTokens, created: time.Now().Unix(), model: s.cfg.ModelID,
		stops: sm.Stop, stream: sm.Stream, usageChunk: sm.Stream && sm.StreamOptions != nil && sm.StreamOptions.IncludeUsage}
	if sm.N != nil {
		j.n = *sm.N
	}
	if sm.MaxTokens != nil {
		if *sm.MaxTokens > s.cfg.MaxTokens {
			return nil, badRequest("max_tokens", "invalid_value", "max_tokens %d exceeds this server's limit of %d", *sm.MaxTokens, s.cfg.MaxTokens)
		}
		j.maxTokens = *sm.MaxTokens
	}
	p := sample.DefaultParams()
	if v := sm.Temperature; v != nil {
		p.Temperature = float32(*v)
	}
	if v := sm.TopP; v != nil {
		p.TopP = float32(*v)
	}
	if v := sm.TopK; v != nil {
		p.TopK = *v
	}
	if v := sm.MinP; v != nil {
		p.MinP = float32(*v)
	}
	if v := sm.RepeatPenalty; v != nil {
		p.RepeatPenalty = float32(*v)
	}
	if v := sm.RepeatLastN; v != nil {
		p.RepeatLastN = *v
	}
	if sm.Seed != nil && *sm.Seed != -1 {
		p.Seed = uint64(*sm.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if err := p.Validate(); err != nil {
		return nil, badRequest("", "invalid_value", "%v", err)
	}
	j.params = p

	j.kv = s.cfg.KV
	if t := sm.Tamp; t != nil {
		j.kv.Storage = kvStorageOf(t.KVType, j.kv.Storage)
		if t.KV != "" {
			// A request naming a policy starts from that policy's own
			// parameters, not the server default's.
			j.kv.Policy, j.kv.Budget, j.kv.Bits = t.KV, 0, 0
		}
		if t.KVBudget != nil {
			j.kv.Budget = *t.KVBudget
		}
		if t.KVBits != nil {
			j.kv.Bits = *t.KVBits
		}
	}
	policy, apiErr := resolveKVFor(j.kv, s.ctxLen, s.e.Model)
	if apiErr != nil {
		return nil, apiErr
	}
	j.policy = policy
	return j, nil
}

// errClientGone marks a failure to write to a client that went away.
var errClientGone = errors.New("client gone")

// serveJob waits for a slot and runs the job's choices on it, streaming or
// not.
func (s *Server) serveJob(w http.ResponseWriter, r *http.Request, j *job) {
	s.active.Add(1)
	defer s.active.Add(-1)
	start := time.Now()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.base, cancel)()

	slot, err := s.pool.acquire(ctx, s.cfg.QueueTimeout)
	if err != nil {
		switch {
		case errors.Is(err, errBusy):
			writeError(w, &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "server_busy", RetryAfter: s.retryAfter(),
				Message: fmt.Sprintf("all %d slots are busy and the queue is full; retry later", len(s.slots))})
		case errors.Is(err, errClosed) || s.base.Err() != nil:
			writeError(w, shuttingDown())
		default: // the client left while queued
			s.metrics.cancelled.Inc()
		}
		return
	}
	defer s.pool.release(slot)
	s.metrics.kvPolicy.WithLabelValues(j.kv.Name(), j.kv.Storage.String()).Inc()
	if j.stream {
		s.streamJob(ctx, w, slot, j)
	} else {
		s.completeJob(ctx, w, slot, j)
	}
	d := time.Since(start)
	s.metrics.duration.WithLabelValues(j.endpoint).Observe(d.Seconds())
	s.noteDuration(d)
}

func shuttingDown() *APIError {
	return &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "shutting_down", RetryAfter: 5,
		Message: "the server is shutting down"}
}

// runChoice generates one choice, passing its text, cut at the first stop
// string, to emit.
func (s *Server) runChoice(ctx context.Context, slot *engine.Slot, j *job, prompt, index int, emit func(string) error) (engine.Stats, error) {
	p := j.params
	p.Seed += uint64(index)
	stop := &stopper{stops: j.stops}
	hitStop := false
	opts := engine.RunOptions{MaxTokens: j.maxTokens, KVStorage: j.kv.Storage, Sampling: p,
		OnText: func(text string) error {
			if s.beforeToken != nil {
				s.beforeToken(ctx)
			}
			out, stopped := stop.feed(text)
			if out != "" {
				if err := emit(out); err != nil {
					return err
				}
			}
			if stopped {
				hitStop = true
				return engine.ErrStop
			}
			return nil
		}}
	// A plain full cache reuses the slot's session.
	if j.policy.Configure != nil && !(j.kv.Name() == "full" && j.kv.Bits == 0) {
		spec, configure := j.kv, j.policy.Configure
		opts.Configure = func(o *model.SessionOptions) error { return configure(spec, o) }
	}
	st, err := slot.Run(ctx, j.prompts[prompt], opts)
	s.metrics.observeRun(st)
	if err != nil {
		return st, err
	}
	if !hitStop {
		if rest := stop.flush(); rest != "" {
			if err := emit(rest); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// genError turns a failed generation into the error to report, or nil when
// the client is gone and nothing can be reported.
func (s *Server) genError(ctx context.Context, err error) *APIError {
	switch {
	case s.base.Err() != nil:
		s.metrics.cancelled.Inc()
		return shuttingDown()
	case ctx.Err() != nil || errors.Is(err, errClientGone):
		s.metrics.cancelled.Inc()
		return nil
	case errors.Is(err, engine.ErrPromptTooLong):
		return badRequest("messages", "context_length_exceeded", "%v", err)
	case errors.Is(err, sample.ErrInvalidParams):
		return badRequest("", "invalid_value", "%v", err)
	}
	s.log.Error("generation failed", "err", err)
	return &APIError{Status: http.StatusInternalServerError, Type: "server_error", Message: "generation failed: " + err.Error()}
}

func (s *Server) completeJob(ctx context.Context, w http.ResponseWriter, slot *engine.Slot, j *job) {
	var usage Usage
	texts := make([]string, 0, len(j.prompts)*j.n)
	finishes := make([]string, 0, cap(texts))
	for pi, prompt := range j.prompts {
		usage.PromptTokens += len(prompt)
		for i := range j.n {
			var sb strings.Builder
			st, err := s.runChoice(ctx, slot, j, pi, pi*j.n+i, func(t string) error { sb.WriteString(t); return nil })
			if err != nil {
				if e := s.genError(ctx, err); e != nil {
					writeError(w, e)
				}
				return
			}
			usage.CompletionTokens += st.GeneratedTokens
			texts = append(texts, sb.String())
			finishes = append(finishes, st.FinishReason)
		}
	}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if j.chat {
		resp := chatResponse{ID: j.id, Object: "chat.completion", Created: j.created, Model: j.model, Usage: &usage}
		for i := range texts {
			resp.Choices = append(resp.Choices, chatChoice{Index: i, Message: &chatMessage{Role: "assistant", Content: &texts[i]}, FinishReason: &finishes[i]})
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp := completionResponse{ID: j.id, Object: "text_completion", Created: j.created, Model: j.model, Usage: &usage}
	for i := range texts {
		resp.Choices = append(resp.Choices, completionChoice{Index: i, Text: texts[i], FinishReason: &finishes[i]})
	}
	writeJSON(w, http.StatusOK, resp)
}

// sse writes server-sent events, each within the write timeout.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (e *sse) write(data []byte) error {
	e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	buf := make([]byte, 0, len(data)+8)
	buf = append(append(append(buf, "data: "...), data...), "\n\n"...)
	if _, err := e.w.Write(buf); err != nil {
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	return nil
}

func (e *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.write(b)
}

func (s *Server) streamJob(ctx context.Context, w http.ResponseWriter, slot *engine.Slot, j *job) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ev := &sse{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}

	chunk := func(index int, text *string, role string, finish *string) any {
		if j.chat {
			return chatResponse{ID: j.id, Object: "chat.completion.chunk", Created: j.created, Model: j.model,
				Choices: []chatChoice{{Index: index, Delta: &chatMessage{Role: role, Content: text}, FinishReason: finish}}}
		}
		t := ""
		if text != nil {
			t = *text
		}
		return completionResponse{ID: j.id, Object: "text_completion", Created: j.created, Model: j.model,
			Choices: []completionChoice{{Index: index, Text: t, FinishReason: finish}}}
	}
	var usage Usage
	for pi, prompt := range j.prompts {
		usage.PromptTokens += len(prompt)
		for i := range j.n {
			index := pi*j.n + i
			if j.chat {
				empty := ""
				if err := ev.send(chunk(index, &empty, "assistant", nil)); err != nil {
					s.genError(ctx, err)
					return
				}
			}
			st, err := s.runChoice(ctx, slot, j, pi, index, func(t string) error { return ev.send(chunk(index, &t, "", nil)) })
			if err != nil {
				if e := s.genError(ctx, err); e != nil {
					ev.send(errorBody{e})
				}
				return
			}
			usage.CompletionTokens += st.GeneratedTokens
			finish := st.FinishReason
			if err := ev.send(chunk(index, nil, "", &finish)); err != nil {
				s.genError(ctx, err)
				return
			}
		}
	}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	if j.usageChunk {
		var v any
		if j.chat {
			v = chatResponse{ID: j.id, Object: "chat.completion.chunk", Created: j.created, Model: j.model, Choices: []chatChoice{}, Usage: &usage}
		} else {
			v = completionResponse{ID: j.id, Object: "text_completion", Created: j.created, Model: j.model, Choices: []completionChoice{}, Usage: &usage}
		}
		if err := ev.send(v); err != nil {
			s.genError(ctx, err)
			return
		}
	}
	if err := ev.write([]byte("[DONE]")); err != nil {
		s.genError(ctx, err)
	}
}

// durations keeps a moving average of request durations for Retry-After.
type durations struct {
	mu  sync.Mutex
	avg float64 // seconds
}

func (s *Server) noteDuration(d time.Duration) {
	s.durs.mu.Lock()
	defer s.durs.mu.Unlock()
	if s.durs.avg == 0 {
		s.durs.avg = d.Seconds()
		return
	}
	s.durs.avg = 0.9*s.durs.avg + 0.1*d.Seconds()
}

func (s *Server) avgSeconds() float64 {
	s.durs.mu.Lock()
	defer s.durs.mu.Unlock()
	return s.durs.avg
}
