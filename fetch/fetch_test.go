package fetch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layout builds, under a temporary root:
//
//	root/repo/go.mod            module tamp
//	root/repo/sub/              the working directory
//	root/repo/shared/testdata/  ../shared/testdata from the working directory
//	root/shared/testdata/       ../shared/testdata beside the repository
//	root/models/                $TAMP_MODELS (when set)
//	root/cache/                 $XDG_CACHE_HOME
type layout struct {
	root, wdShared, repoShared, models, cache string
}

func newLayout(t *testing.T, setModels bool) layout {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := layout{
		root:       root,
		wdShared:   filepath.Join(root, "repo", "shared", "testdata"),
		repoShared: filepath.Join(root, "shared", "testdata"),
		models:     filepath.Join(root, "models"),
		cache:      filepath.Join(root, "cache"),
	}
	for _, d := range []string{filepath.Join(root, "repo", "sub"), l.wdShared, l.repoShared, l.models, l.cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "repo", "go.mod"), "// tamp\nmodule tamp\n\ngo 1.26\n")
	t.Chdir(filepath.Join(root, "repo", "sub"))
	t.Setenv("XDG_CACHE_HOME", l.cache)
	if setModels {
		t.Setenv(EnvModels, l.models)
	} else {
		t.Setenv(EnvModels, "")
	}
	return l
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestModelsDir(t *testing.T) {
	t.Setenv(EnvModels, "/some/where")
	if got := ModelsDir(); got != "/some/where" {
		t.Errorf("ModelsDir with %s set = %q", EnvModels, got)
	}
	cache := t.TempDir()
	t.Setenv(EnvModels, "")
	t.Setenv("XDG_CACHE_HOME", cache)
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ModelsDir(), filepath.Join(base, "tamp", "models"); got != want {
		t.Errorf("default ModelsDir = %q, want %q", got, want)
	}
}

func TestSearchDirs(t *testing.T) {
	t.Run("with TAMP_MODELS", func(t *testing.T) {
		l := newLayout(t, true)
		want := []string{l.models, l.wdShared, l.repoShared}
		if got := SearchDirs(); !slices.Equal(got, want) {
			t.Errorf("SearchDirs() =\n %q\nwant\n %q", got, want)
		}
	})
	t.Run("without TAMP_MODELS", func(t *testing.T) {
		l := newLayout(t, false)
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{l.wdShared, l.repoShared, filepath.Join(base, "tamp", "models")}
		if got := SearchDirs(); !slices.Equal(got, want) {
			t.Errorf("SearchDirs() =\n %q\nwant\n %q", got, want)
		}
	})
	t.Run("working directory is the repository", func(t *testing.T) {
		l := newLayout(t, true)
		t.Chdir(filepath.Join(l.root, "repo"))
		want := []string{l.models, l.repoShared}
		if got := SearchDirs(); !slices.Equal(got, want) {
			t.Errorf("SearchDirs() = %q, want %q (no duplicates)", got, want)
		}
	})
	t.Run("another module is not the repository", func(t *testing.T) {
		l := newLayout(t, true)
		write(t, filepath.Join(l.root, "repo", "sub", "go.mod"), "module example.com/other\n")
		want := []string{l.models, l.wdShared, l.repoShared}
		if got := SearchDirs(); !slices.Equal(got, want) {
			t.Errorf("SearchDirs() = %q, want %q", got, want)
		}
		write(t, filepath.Join(l.root, "repo", "go.mod"), "module example.com/other\n")
		want = []string{l.models, l.wdShared}
		if got := SearchDirs(); !slices.Equal(got, want) {
			t.Errorf("outside a tamp repository SearchDirs() = %q, want %q", got, want)
		}
	})
}

func TestResolveDefault(t *testing.T) {
	tests := []struct {
		name  string
		files []string // relative to root
		want  string   // relative to root; "" means an error
	}{
		{"prefers stories260K.gguf in a later directory",
			[]string{"models/a.gguf", "shared/testdata/stories260K.gguf"}, "shared/testdata/stories260K.gguf"},
		{"stories260K.gguf in the first directory that has it",
			[]string{"repo/shared/testdata/stories260K.gguf", "shared/testdata/stories260K.gguf"}, "repo/shared/testdata/stories260K.gguf"},
		{"else the first .gguf by name in the first directory with one",
			[]string{"repo/shared/testdata/b.gguf", "repo/shared/testdata/a.GGUF", "shared/testdata/0.gguf"}, "repo/shared/testdata/a.GGUF"},
		{"TAMP_MODELS first",
			[]string{"models/z.gguf", "repo/shared/testdata/a.gguf"}, "models/z.gguf"},
		{"ignores partial downloads, directories and other files",
			[]string{"models/x.gguf.partial", "models/d.gguf/inner", "models/m.bin", "shared/testdata/y.gguf"}, "shared/testdata/y.gguf"},
		{"nothing found", []string{"models/m.bin", "models/x.gguf.partial"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t, true)
			for _, f := range tc.files {
				write(t, filepath.Join(l.root, f), "GGUF")
			}
			got, err := Resolve("")
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Resolve(\"\") = %q, want an error", got)
				}
				for _, w := range []string{"tamp pull " + DefaultRef, EnvModels, l.models, l.repoShared} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(l.root, tc.want); got != want {
				t.Errorf("Resolve(\"\") = %q, want %q", got, want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	l := newLayout(t, true)
	write(t, filepath.Join(l.models, "both.gguf"), "GGUF")
	write(t, filepath.Join(l.repoShared, "both.gguf"), "GGUF")
	write(t, filepath.Join(l.repoShared, "tiny.gguf"), "GGUF")
	write(t, filepath.Join(l.repoShared, "ckpt.bin"), "bin")
	write(t, filepath.Join(l.root, "repo", "sub", "local.gguf"), "GGUF")
	write(t, filepath.Join(l.root, "repo", "sub", "dir", "x.gguf"), "GGUF")
	write(t, filepath.Join(l.models, "pulled.gguf"), "GGUF")
	write(t, filepath.Join(l.models, "half.gguf"+partialSuffix), "GG")

	tests := []struct {
		ref     string
		want    string // "" means an error
		wantErr []string
	}{
		{ref: "local.gguf", want: "local.gguf"},
		{ref: "dir/x.gguf", want: "dir/x.gguf"},
		{ref: filepath.Join(l.repoShared, "ckpt.bin"), want: filepath.Join(l.repoShared, "ckpt.bin")},
		{ref: "both.gguf", want: filepath.Join(l.models, "both.gguf")},
		{ref: "tiny.gguf", want: filepath.Join(l.repoShared, "tiny.gguf")},
		{ref: "tiny", want: filepath.Join(l.repoShared, "tiny.gguf")},
		{ref: "ckpt.bin", want: filepath.Join(l.repoShared, "ckpt.bin")},
		{ref: "hf:someone/repo/sub/pulled.gguf", want: filepath.Join(l.models, "pulled.gguf")},
		{ref: "https://example.org/x/pulled.gguf", want: filepath.Join(l.models, "pulled.gguf")},
		{ref: "hf:someone/repo/other.gguf", wantErr: []string{"not downloaded", "tamp pull hf:someone/repo/other.gguf"}},
		{ref: "https://example.org/half.gguf", wantErr: []string{"partly downloaded", "tamp pull https://example.org/half.gguf"}},
		{ref: "hf:bad", wantErr: []string{"bad Hugging Face reference"}},
		{ref: "missing.gguf", wantErr: []string{"not found", l.models, l.repoShared, EnvModels}},
		{ref: "dir", wantErr: []string{"is a directory"}},
		{ref: "nope/x.gguf", wantErr: []string{"nope/x.gguf not found"}},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := Resolve(tc.ref)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Resolve(%q) = %q, want an error", tc.ref, got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%q) = %q, want %q", tc.ref, got, tc.want)
			}
		})
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		ref, url, name string
		hf             bool
	}{
		{"hf:a/b/c.gguf", "https://huggingface.co/a/b/resolve/main/c.gguf", "c.gguf", true},
		{"hf:a/b@dev/d/c.gguf", "https://huggingface.co/a/b/resolve/dev/d/c.gguf", "c.gguf", true},
		{"hf:a/b/with%sign.gguf", "https://huggingface.co/a/b/resolve/main/with%25sign.gguf", "with%sign.gguf", true},
		{"https://example.org/m/x.gguf?download=true", "https://example.org/m/x.gguf?download=true", "x.gguf", false},
		{"http://example.org/m/a%20b.gguf", "http://example.org/m/a%20b.gguf", "a b.gguf", false},
	}
	for _, tc := range tests {
		r, err := parseRemote(tc.ref, "")
		if err != nil {
			t.Errorf("parseRemote(%q): %v", tc.ref, err)
			continue
		}
		if r.url != tc.url || r.name != tc.name || r.hf != tc.hf {
			t.Errorf("parseRemote(%q) = %+v, want url %q name %q hf %v", tc.ref, r, tc.url, tc.name, tc.hf)
		}
	}
	for _, bad := range []string{"hf:a/b", "hf:/b/c.gguf", "hf:a/b/", "hf:a/b/c?x.gguf", "http:///x.gguf", "https://example.org/", "https://example.org/..", "hf:a/b/x\\y.gguf"} {
		if r, err := parseRemote(bad, ""); err == nil {
			t.Errorf("parseRemote(%q) = %+v, want an error", bad, r)
		}
	}
}
