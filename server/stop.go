package server

import "strings"

// stopper cuts generated text at the first stop string. Text that might be
// the start of a stop string is held back until the following tokens settle
// it, so a stream never sends text that later turns out to belong to a stop
// string.
type stopper struct {
	stops   []string
	pending string
}

// feed adds generated text and returns what can be sent now; stopped is set
// when a stop string has appeared, and out is then the text before it.
func (s *stopper) feed(text string) (out string, stopped bool) {
	if len(s.stops) == 0 {
		return text, false
	}
	s.pending += text
	first := -1
	for _, st := range s.stops {
		if i := strings.Index(s.pending, st); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out = s.pending[:first]
		s.pending = ""
		return out, true
	}
	// Hold back the longest tail that some stop string starts with. A stop
	// string cannot begin in text already sent: that text was, when sent,
	// no prefix of any stop string's start.
	hold := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(s.pending)); k > hold; k-- {
			if strings.HasSuffix(s.pending, st[:k]) {
				hold = k
				break
			}
		}
	}
	cut := len(s.pending) - hold
	out, s.pending = s.pending[:cut], s.pending[cut:]
	return out, false
}

// flush returns the text held back, for when generation ends without a stop
// string.
func (s *stopper) flush() string {
	out := s.pending
	s.pending = ""
	return out
}
