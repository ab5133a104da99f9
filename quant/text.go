package quant

import (
	"bytes"
	"fmt"
)

// SplitText cuts a text into two halves by bytes at a line boundary, so that
// one half can calibrate and the other evaluate: the cut is just after the
// first newline at or after byte len(text)/2 (the first half keeps that
// newline). A text with no newline there is cut at len(text)/2 exactly.
func SplitText(text []byte) (first, second []byte) {
	mid := len(text) / 2
	if i := bytes.IndexByte(text[mid:], '\n'); i >= 0 {
		mid += i + 1
	}
	return text[:mid], text[mid:]
}

// TextPart selects part of a text by name: "all", "first" or "second" (the
// halves of SplitText).
func TextPart(text []byte, part string) ([]byte, error) {
	first, second := SplitText(text)
	switch part {
	case "", "all":
		return text, nil
	case "first":
		return first, nil
	case "second":
		return second, nil
	}
	return nil, fmt.Errorf("quant: text part %q is not all, first or second", part)
}
