package sample_test

import (
	"fmt"
	"log"

	"tamp/sample"
)

// Greedy decoding: temperature 0 always takes the highest logit.
func ExampleSampler_greedy() {
	p := sample.DefaultParams()
	p.Temperature = 0
	s, err := sample.New(p)
	if err != nil {
		log.Fatal(err)
	}
	logits := []float32{0.1, 2.5, -1, 2.4}
	fmt.Println(s.Sample(logits))
	// Output: 1
}

// A generation loop feeds every token back through Accept so the repetition
// penalty sees it. Here the penalty (2.5/1.3 ≈ 1.92) moves the choice from
// token 1 to token 3 (2.4), and back once both have been used (2.4/1.3 ≈ 1.85).
func ExampleSampler_Accept() {
	p := sample.DefaultParams()
	p.Temperature = 0
	p.RepeatPenalty = 1.3
	s, err := sample.New(p)
	if err != nil {
		log.Fatal(err)
	}
	logits := []float32{0.1, 2.5, -1, 2.4}
	for range 3 {
		tok := s.Sample(logits)
		s.Accept(tok)
		fmt.Print(tok, " ")
	}
	fmt.Println()
	// Output: 1 3 1
}

// Parameters out of range are refused with an error naming them.
func ExampleNew() {
	p := sample.DefaultParams()
	p.TopP = 1.5
	_, err := sample.New(p)
	fmt.Println(err)
	// Output: sample: invalid parameters: top-p 1.5 out of range: want 0 < top-p <= 1 (1 = off)
}
