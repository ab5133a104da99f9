package chat_test

import (
	"fmt"

	"tamp/chat"
)

func ExampleTemplate_Render() {
	// ChatML, as Qwen and many others use it.
	t, err := chat.New(`{% for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}`, chat.Options{})
	if err != nil {
		panic(err)
	}
	prompt, err := t.Render([]chat.Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Hi!"},
	}, true)
	if err != nil {
		panic(err)
	}
	fmt.Print(prompt)
	// Output:
	// <|im_start|>system
	// Be brief.<|im_end|>
	// <|im_start|>user
	// Hi!<|im_end|>
	// <|im_start|>assistant
}

func ExampleTemplate_Render_fallback() {
	t, err := chat.New(chat.Fallback, chat.Options{})
	if err != nil {
		panic(err)
	}
	prompt, _ := t.Render([]chat.Message{{Role: "user", Content: "Tell me a story."}}, true)
	fmt.Print(prompt)
	// Output:
	// <|user|>
	// Tell me a story.
	// <|assistant|>
}
