package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// APIError is an error as the OpenAI API reports it: an HTTP status and a
// JSON body {"error": {"message", "type", "param", "code"}}.
type APIError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	// Type is the OpenAI error class: "invalid_request_error",
	// "authentication_error", "not_found_error", "server_error" …
	Type string `json:"type"`
	// Param names the request field at fault, if one is.
	Param string `json:"param,omitempty"`
	// Code is a machine-readable reason such as "context_length_exceeded".
	Code string `json:"code,omitempty"`
	// RetryAfter, in seconds, is sent as a Retry-After header when positive.
	RetryAfter int `json:"-"`
}

// Error returns the message.
func (e *APIError) Error() string { return e.Message }

// errorBody is the JSON envelope of an APIError.
type errorBody struct {
	Error *APIError `json:"error"`
}

func badRequest(param, code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *APIError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	// The request body may be unread or half read (a stalled upload, a
	// refused size): closing the connection spares Go's server from reading
	// the rest, with no deadline, before it can answer.
	h.Set("Connection", "close")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(errorBody{e})
	w.Write(append(b, '\n'))
}
