// Package server is tamp's OpenAI-compatible HTTP server: `tamp serve`.
//
// It answers POST /v1/completions and POST /v1/chat/completions (with
// "stream": true as server-sent events ending in "data: [DONE]"),
// GET /v1/models, GET /health and GET /metrics (Prometheus text), following
// OpenAI's API and llama.cpp's conventions, so the usual clients work
// unchanged. Chat messages become a prompt through the model's own chat
// template (package chat).
//
// Requests run on a fixed number of slots, each a sequence with its own KV
// cache sharing the model's weights. A request that finds every slot busy
// waits in a bounded first-in, first-out queue; past that bound it gets 503
// with Retry-After. A client that disconnects stops its generation at the
// next token and frees its slot.
//
// Beyond OpenAI's fields a request may carry llama.cpp's sampling extensions
// (top_k, min_p, repeat_penalty, repeat_last_n) and a "tamp" object choosing
// the KV cache for that request:
//
//	"tamp": {"kv_type": "f32", "kv": "snapkv", "kv_budget": 128, "kv_bits": 4}
//
// kv names a policy registered with RegisterKVPolicy; a well-formed name this
// build lacks is refused with 400 "KV policy … is not available in this
// build". Absent fields take the server's defaults (Config.KV).
//
// Fields left out take llama.cpp's sampling defaults (temperature 0.8, top-k
// 40, top-p 0.95, min-p 0.05), the same as `tamp run`, not OpenAI's. Unknown
// fields are an error, not silently ignored. Completion prompts are tokenized
// as `tamp run` does: BOS added when the vocabulary asks, and control-token
// text in the prompt left as text.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tamp/chat"
	"tamp/engine"
	"tamp/kv"
)

// Config configures a Server. Zero values take the defaults given.
type Config struct {
	// Engine is the loaded model. Required.
	Engine *engine.Engine
	// ModelID is the name /v1/models lists and requests must use (or leave
	// empty); default: the model file's base name without its extension.
	// The file's base name with extension is accepted too.
	ModelID string
	// Parallel is the number of slots: sequences generated at once (default 4).
	Parallel int
	// Context is each slot's context length in tokens; 0 means the model's.
	Context int
	// MaxQueue is how many requests may wait for a slot (default 64; a
	// negative value means none); more get 503.
	MaxQueue int
	// QueueTimeout is the longest a request waits for a slot before it gets
	// 503 (default 2 minutes).
	QueueTimeout time.Duration
	// MaxTokens caps a request's max_tokens (default: the context length);
	// a larger value is refused.
	MaxTokens int
	// MaxBodyBytes bounds a request body (default 4 MiB); larger gets 413.
	MaxBodyBytes int64
	// APIKey, if set, is required as "Authorization: Bearer KEY" on every
	// endpoint but /health.
	APIKey string
	// KV is the KV cache a request gets when its "tamp" object does not say.
	KV KVSpec
	// Chat renders chat requests; default: the model file's template, or
	// chat.Fallback when it has none.
	Chat *chat.Template
	// ReadHeaderTimeout bounds the time to read a request's headers
	// (default 10 s); BodyTimeout the time to read its body (default 30 s);
	// WriteTimeout the time to write one response or one streamed event to
	// a client (default 30 s): a client that stops reading loses its slot
	// then. IdleTimeout closes idle keep-alive connections (default 2 min).
	ReadHeaderTimeout, BodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// Log receives one line per request and server events; default: none.
	Log *slog.Logger
}

// maxHeaderBytes bounds request headers; Go answers 431 beyond it.
const maxHeaderBytes = 64 << 10

// Server serves one model over HTTP. Make one with New.
type Server struct {
	cfg     Config
	e       *engine.Engine
	tmpl    *chat.Template
	ctxLen  int
	slots   []*engine.Slot
	pool    *pool
	metrics *metrics
	log     *slog.Logger
	handler http.Handler
	created int64

	// base is cancelled when a shutdown's deadline passes: every generation
	// watches it.
	base       context.Context
	cancelBase context.CancelFunc
	draining   atomic.Bool
	active     atomic.Int64 // generation requests being handled
	durs       durations

	mu sync.Mutex
	hs *http.Server

	// beforeToken, when set by a test, runs before each generated token's
	// text is handled, with the request's context.
	beforeToken func(ctx context.Context)
}

// New prepares a server: it checks the configuration, makes the slots and
// compiles the chat template.
func New(cfg Config) (*Server, error) {
	e := cfg.Engine
	if e == nil {
		return nil, errors.New("server: no engine")
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	if cfg.Parallel < 1 || cfg.Parallel > 256 {
		return nil, fmt.Errorf("server: parallel %d out of range [1, 256]", cfg.Parallel)
	}
	if cfg.Context < 0 {
		return nil, fmt.Errorf("server: context %d is negative", cfg.Context)
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 64
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	}
	setDefault(&cfg.QueueTimeout, 2*time.Minute)
	setDefault(&cfg.ReadHeaderTimeout, 10*time.Second)
	setDefault(&cfg.BodyTimeout, 30*time.Second)
	setDefault(&cfg.WriteTimeout, 30*time.Second)
	setDefault(&cfg.IdleTimeout, 2*time.Minute)
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.ModelID == "" {
		base := filepath.Base(e.Path)
		cfg.ModelID = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, e: e, log: cfg.Log, created: time.Now().Unix()}
	for range cfg.Parallel {
		sl, err := e.NewSlot(cfg.Context)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.slots = append(s.slots, sl)
	}
	s.ctxLen = s.slots[0].Context()
	if cfg.MaxTokens <= 0 {
		s.cfg.MaxTokens = s.ctxLen
	}
	if _, err := resolveKVFor(cfg.KV, s.ctxLen, e.Model); err != nil {
		return nil, fmt.Errorf("server: default KV cache: %s", err.Message)
	}
	s.tmpl = cfg.Chat
	if s.tmpl == nil {
		t, err := chat.FromGGUF(e.File, e.Tok)
		if err != nil {
			return nil, fmt.Errorf("server: %w (pass a template of your own)", err)
		}
		s.tmpl = t
	}
	s.pool = newPool(s.slots, cfg.MaxQueue)
	s.metrics = newMetrics(s.pool, s.slots, int64(cfg.Parallel)*e.Model.KVCacheBytes(s.ctxLen, cfg.KV.Storage))
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// ModelID is the name the server lists its model under.
func (s *Server) ModelID() string { return s.cfg.ModelID }

// ChatTemplate is the template chat requests are rendered with.
func (s *Server) ChatTemplate() *chat.Template { return s.tmpl }

// Context is each slot's context length in tokens.
func (s *Server) Context() int { return s.ctxLen }

// Handler returns the server's HTTP handler, for use with a server of the
// caller's own; Serve uses it with the configured timeouts.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on l until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return nil
	}
	s.hs = hs
	s.mu.Unlock()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server gracefully: it stops accepting connections,
// answers queued and new requests with 503, and waits for the requests in
// flight to finish. If ctx ends first, it cancels those generations (a
// stream gets an error event), waits a few seconds more for their handlers,
// closes every connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	hs := s.hs
	s.mu.Unlock()
	s.pool.close()
	var err error
	if hs != nil {
		err = hs.Shutdown(ctx)
	}
	if err == nil {
		s.cancelBase()
		return nil
	}
	s.log.Warn("shutdown deadline passed: cancelling requests in flight")
	s.cancelBase()
	// Give the cancelled handlers a moment to send their error events.
	for wait := time.Now().Add(5 * time.Second); s.active.Load() > 0 && time.Now().Before(wait); {
		time.Sleep(10 * time.Millisecond)
	}
	hs.Close()
	return err
}

// routes builds the handler: endpoints behind authentication, panic
// recovery and metrics.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/completions", s.method(http.MethodPost, s.handleCompletions))
	mux.HandleFunc("/v1/chat/completions", s.method(http.MethodPost, s.handleChat))
	mux.HandleFunc("/v1/models", s.method(http.MethodGet, s.handleModels))
	mux.HandleFunc("/v1/models/{id...}", s.method(http.MethodGet, s.handleModel))
	mux.HandleFunc("/health", s.method(http.MethodGet, s.handleHealth))
	mux.Handle("/metrics", s.method(http.MethodGet, s.metrics.handler().ServeHTTP))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &APIError{Status: http.StatusNotFound, Type: "not_found_error", Code: "unknown_url",
			Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w}
		endpoint := endpointLabel(r.URL.Path)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v)
				if !rec.wrote {
					writeError(rec, &APIError{Status: http.StatusInternalServerError, Type: "server_error", Message: "internal error"})
				}
			}
			s.metrics.observeRequest(endpoint, rec.status())
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status(), "duration", time.Since(start).Round(time.Microsecond))
		}()
		if s.cfg.APIKey != "" && r.URL.Path != "/health" && !s.authorized(r) {
			writeError(rec, &APIError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
				Message: "missing or incorrect API key: send it as \"Authorization: Bearer KEY\""})
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

func (s *Server) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, &APIError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
				Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, m, r.Method)})
			return
		}
		h(w, r)
	}
}

// endpointLabel keeps the metrics' endpoint label to a fixed set.
func endpointLabel(path string) string {
	switch path {
	case "/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics":
		return path
	}
	if strings.HasPrefix(path, "/v1/models/") {
		return "/v1/models/{id}"
	}
	return "other"
}

// statusWriter records the status code for metrics and whether anything
// was written; Unwrap lets http.ResponseController reach the connection.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// readBody reads a request body within the size and time limits.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *APIError) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge(s.cfg.MaxBodyBytes)
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	// Clear the deadline at once: the server's watch for a disconnecting
	// client reads under it and would take its expiry for a disconnect.
	rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mb *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mb):
			return nil, tooLarge(s.cfg.MaxBodyBytes)
		case errors.As(err, &ne) && ne.Timeout():
			return nil, &APIError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "timeout",
				Message: fmt.Sprintf("request body not received within %v", s.cfg.BodyTimeout)}
		}
		return nil, badRequest("", "invalid_body", "reading the request body: %v", err)
	}
	return body, nil
}

func tooLarge(limit int64) *APIError {
	return &APIError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
		Message: fmt.Sprintf("request body exceeds the limit of %d bytes", limit)}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	busy, queued := s.pool.stats()
	status, code := "ok", http.StatusOK
	if s.draining.Load() {
		status, code = "shutting_down", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"status": status, "model": s.cfg.ModelID,
		"slots_total": len(s.slots), "slots_busy": busy, "queue": queued,
	})
}

// modelInfo is one entry of /v1/models.
type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Meta is llama.cpp's extension with the model's shape.
	Meta map[string]any `json:"meta,omitempty"`
}

func (s *Server) modelInfo() modelInfo {
	c := s.e.Model.Config
	return modelInfo{ID: s.cfg.ModelID, Object: "model", Created: s.created, OwnedBy: "tamp", Meta: map[string]any{
		"arch": c.Arch, "n_vocab": c.Vocab, "n_ctx_train": c.ContextLen, "n_ctx": s.ctxLen, "n_embd": c.Dim,
		"size": s.e.Model.WeightBytes(), "chat_template_fallback": s.tmpl.IsFallback(),
	}}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelInfo{s.modelInfo()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		id = "(empty)"
	}
	if err := s.checkModel(id); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.modelInfo())
}

// checkModel accepts the server's model id, the model file's name, or
// nothing.
func (s *Server) checkModel(name string) *APIError {
	if name == "" || name == s.cfg.ModelID || name == filepath.Base(s.e.Path) {
		return nil
	}
	return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("the model %q does not exist on this server; it serves %q", name, s.cfg.ModelID)}
}

// newID returns a random response id with the given prefix.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// kvStorageOf parses a request's kv_type, already validated, over a default.
func kvStorageOf(s string, def kv.Storage) kv.Storage {
	if s == "" {
		return def
	}
	st, err := kv.ParseStorage(s)
	if err != nil {
		return def
	}
	return st
}

// retryAfter estimates, in whole seconds, when a refused request might find a
// slot: one average generation, at least a second.
func (s *Server) retryAfter() int {
	return max(1, int(math.Ceil(s.avgSeconds())))
}
