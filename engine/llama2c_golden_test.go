package engine_test

import (
	"os"
	"strings"
	"testing"

	"tamp/engine"
	"tamp/internal/testdata"
	"tamp/model"
)

// runC reproduces llama2.c's run.c at temperature 0: steps counts prompt
// positions too, prompt tokens are echoed as they are forced, generation stops
// when BOS is sampled, and the first piece after BOS loses its leading space.
func runC(t *testing.T, e *engine.Engine, prompt string, steps int) string {
	t.Helper()
	tokens := e.Tok.Encode(prompt, true, false)
	if prompt == "" {
		tokens = []int32{e.Tok.BOS()}
	}
	sess, err := e.Model.NewSession(model.SessionOptions{Context: steps})
	if err != nil {
		t.Fatal(err)
	}
	dec := e.Tok.NewDecoder()
	dec.StripSpaceAfterBOS = true
	var out strings.Builder
	dec.Add(tokens[0])
	token := tokens[0]
	for pos := 0; pos < steps; pos++ {
		logits, err := sess.Forward([]int32{token}, false)
		if err != nil {
			t.Fatal(err)
		}
		var next int32
		if pos < len(tokens)-1 {
			next = tokens[pos+1]
		} else {
			next = argmax(logits)
		}
		if next == e.Tok.BOS() {
			break
		}
		out.WriteString(dec.Add(next))
		token = next
	}
	out.WriteString(dec.Flush())
	return out.String()
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestLlama2cGolden checks llama2.c's own expected outputs, from the llama2.c
// checkpoint and from the GGUF conversion of the same model.
func TestLlama2cGolden(t *testing.T) {
	models := []struct{ name, path, tok string }{
		{"bin", "stories260K.bin", "tok512.bin"},
		{"gguf", "stories260K.gguf", ""},
	}
	goldens := []struct {
		file, prompt string
		steps        int
	}{
		{"stories260K.expected-t0-n200.txt", "", 200},
		{"stories260K.expected-t0-zoo-n60.txt", "Zoo", 60},
	}
	for _, m := range models {
		tok := ""
		if m.tok != "" {
			tok = testdata.Path(t, m.tok)
		}
		e, err := engine.Open(testdata.Path(t, m.path), engine.Options{Tokenizer: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range goldens {
			t.Run(m.name+"/"+g.file, func(t *testing.T) {
				want, err := os.ReadFile(testdata.Path(t, g.file))
				if err != nil {
					t.Fatal(err)
				}
				if got := runC(t, e, g.prompt, g.steps); got != string(want) {
					t.Errorf("output differs from llama2.c's\n got %q\nwant %q", got, want)
				}
			})
		}
		e.Close()
	}
}
