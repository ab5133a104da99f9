package gguf

import (
	"errors"
	"fmt"
)

// FormatError reports a GGUF file that cannot be read: which field was wrong,
// where it starts in the file and what was wrong with it.
type FormatError struct {
	// Path is the file's name when it came from Open, empty for Parse.
	Path string
	// Field names the bad part of the file, such as "header.version",
	// "kv[4].value" or "tensor_info[3].type".
	Field string
	// Offset is the absolute byte offset of Field in the file.
	Offset int64
	// Msg says what was wrong.
	Msg string
}

func (e *FormatError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("gguf: %s: %s at byte %d: %s", e.Path, e.Field, e.Offset, e.Msg)
	}
	return fmt.Sprintf("gguf: %s at byte %d: %s", e.Field, e.Offset, e.Msg)
}

// formatErr builds a *FormatError; the decoder's helpers return it as error.
func formatErr(field string, off int, format string, args ...any) error {
	return &FormatError{Field: field, Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
}

// refield renames the field of a FormatError built deep inside a helper that
// did not know the caller's name for it (array elements name their index only
// on failure, so the common path stays free of string formatting).
func refield(err error, field string) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Field = field
	}
	return err
}

// annotate adds context, such as the key or tensor name, to a FormatError.
func annotate(err error, format string, args ...any) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Msg += fmt.Sprintf(format, args...)
	}
	return err
}
