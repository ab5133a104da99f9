// Package testdata locates tamp's shared test data: real tiny models, texts and
// golden outputs kept beside the repository in ../shared/testdata, read in place
// and never copied into the repository.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar overrides where the shared test data lives.
const EnvVar = "TAMP_TESTDATA"

// Dir returns the shared test-data folder, or fails the test with a message
// saying what belongs there. It never skips: a missing folder is a broken set-up.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := find()
	if err != nil {
		tb.Fatalf("shared test data not found: %v\n"+
			"Put the tamp test data (stories260K.gguf, stories260K.bin, tok512.bin, tinystories-sample.txt, golden/, tokenizers/; "+
			"see its PROVENANCE.md) in ../shared/testdata beside the repository, or set %s to its path.", err, EnvVar)
	}
	return dir
}

// Path returns the path of name inside the shared test data, failing the test
// if that file is missing.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Dir(tb), name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("shared test file %s is missing (%v); the shared test data folder must hold it (see its PROVENANCE files)", name, err)
	}
	return p
}

// Lookup finds the shared test-data folder without a testing.TB, for tools and
// benchmarks that fall back to it.
func Lookup() (string, error) { return find() }

func find() (string, error) {
	if d := os.Getenv(EnvVar); d != "" {
		if _, err := os.Stat(d); err != nil {
			return "", err
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "testdata")
			if _, err := os.Stat(d); err != nil {
				return "", err
			}
			return filepath.Clean(d), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
