package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"tamp/chat"
	"tamp/kv"
	"tamp/server"
)

func newServeCmd() *cobra.Command {
	var (
		mf              modelFlags
		host            string
		port            int
		cfg             server.Config
		kvType          string
		kvTable         string
		templateFile    string
		shutdownTimeout time.Duration
		verbose         bool
	)
	cmd := &cobra.Command{
		Use:   "serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N]",
		Short: "Serve a model over an OpenAI-compatible HTTP API",
		Long: `Serve a model over HTTP with OpenAI's API, so existing clients and SDKs work:

  POST /v1/completions        text completion ("stream": true for server-sent events)
  POST /v1/chat/completions   chat, rendered with the model's chat template
  GET  /v1/models             the model served
  GET  /health                status, busy slots and queue length
  GET  /metrics               Prometheus metrics

--parallel sequences run at once, each with its own KV cache; further
requests wait in a queue of --max-queue and beyond it get 503 with
Retry-After. A client that disconnects frees its slot at once.

Chat uses the GGUF file's tokenizer.chat_template (a Jinja template). A model
without one gets a plain format: each message as "<|ROLE|>" and its text on
the next line, then "<|assistant|>"; --chat-template FILE overrides both.

Requests may choose their KV cache with a "tamp" object:
  {"tamp": {"kv_type": "f32", "kv": "POLICY", "kv_budget": 128, "kv_bits": 4}}
POLICY is one of ` + strings.Join(server.KVPolicies(), ", ") + `;
every policy but full needs kv_budget (cache entries kept per KV head), and
any may add kv_bits 8, 4 or 2 (KIVI quantization); bad combinations get a 400
naming the field. --kv, --kv-budget, --kv-bits and --kv-type set the defaults;
--kv-table gives every compressing policy per-layer budgets.

The server listens on loopback unless --host says otherwise; give --api-key
(or $TAMP_API_KEY) before exposing it. SIGTERM or Ctrl-C stops it gracefully:
requests in flight get --shutdown-timeout to finish, then are cancelled.`,
		Example: `  tamp serve -m stories260K.gguf --port 8080
  curl localhost:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			storage, err := parseKV(kvType)
			if err != nil {
				return err
			}
			cfg.KV.Storage = storage
			if kvTable != "" {
				if cfg.KV.Table, err = kv.ParseTable(kvTable); err != nil {
					return err
				}
			}
			if cfg.MaxQueue == 0 {
				cfg.MaxQueue = -1 // server.Config reads 0 as "default"
			}
			if cfg.APIKey == "" {
				cfg.APIKey = os.Getenv("TAMP_API_KEY")
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			if templateFile != "" {
				src, err := os.ReadFile(templateFile)
				if err != nil {
					return err
				}
				if cfg.Chat, err = chat.New(string(src), chat.Options{BOS: e.Tok.Text(e.Tok.BOS()), EOS: e.Tok.Text(e.Tok.EOS())}); err != nil {
					return fmt.Errorf("%s: %w", templateFile, err)
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Engine = e
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && cfg.APIKey == "" {
				fmt.Fprintf(w, "warning: listening on %s without --api-key: anyone who can reach it can use it\n", host)
			}
			tmpl := "the model's chat template"
			if srv.ChatTemplate().IsFallback() {
				tmpl = "the fallback chat format (the model has no template)"
			}
			// Catch SIGTERM before announcing the address: from then on a
			// supervisor's stop request means a graceful shutdown.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			fmt.Fprintf(w, "serving %s on http://%s: %d slots of %d tokens, %s\n", srv.ModelID(), ln.Addr(), cfg.Parallel, srv.Context(), tmpl)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			fmt.Fprintf(w, "shutting down: finishing requests in flight (at most %v)\n", shutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				fmt.Fprintln(w, "shutdown deadline passed: requests still in flight were cancelled")
			}
			return <-errc
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&port, "port", 8080, "TCP port; 0 picks a free one")
	f.IntVar(&cfg.Parallel, "parallel", 4, "sequences generated at once, each with its own KV cache")
	f.IntVar(&cfg.Context, "ctx", 0, "context length per sequence in tokens; 0 = the model's")
	f.IntVar(&cfg.MaxQueue, "max-queue", 64, "requests that may wait for a slot; 0 = none: 503 as soon as every slot is busy")
	f.DurationVar(&cfg.QueueTimeout, "queue-timeout", 2*time.Minute, "longest wait for a slot before 503")
	f.IntVar(&cfg.MaxTokens, "max-tokens", 0, "largest max_tokens a request may ask for; 0 = the context length")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body", 4<<20, "largest request body in bytes (413 beyond)")
	f.StringVar(&cfg.APIKey, "api-key", "", "require \"Authorization: Bearer KEY\" (default $TAMP_API_KEY)")
	f.StringVar(&cfg.ModelID, "alias", "", "model name clients use; default: the file name without extension")
	f.StringVar(&cfg.KV.Policy, "kv", "", "default KV-cache policy for requests that name none (full = keep everything); available: "+fmt.Sprint(server.KVPolicies()))
	f.IntVar(&cfg.KV.Budget, "kv-budget", 0, "default KV budget: cache entries kept per head")
	f.IntVar(&cfg.KV.Bits, "kv-bits", 0, "default KV precision in bits (KIVI: 8, 4 or 2), with any policy including full")
	f.StringVar(&kvTable, "kv-table", "", "per-layer budgets for every compressing policy: uniform, pyramid, or a JSON table (tamp kv evolve writes one)")
	f.StringVar(&templateFile, "chat-template", "", "Jinja chat template file to use instead of the model's")
	f.DurationVar(&shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	f.BoolVarP(&verbose, "verbose", "v", false, "log more")
	kvStorageFlag(cmd, &kvType)
	return cmd
}
