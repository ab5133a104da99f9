// Package fetch finds model files and downloads them.
//
// A model reference is one of:
//
//   - a path to an existing file, used as is;
//   - a bare file name such as "stories260K.gguf" (or "stories260K"), looked
//     up in the directories SearchDirs lists, in order;
//   - "hf:OWNER/REPO/PATH/FILE.gguf" or "hf:OWNER/REPO@REVISION/PATH/FILE.gguf",
//     a file in a Hugging Face repository (revision "main" unless given);
//   - an http:// or https:// URL.
//
// Pull downloads the last two kinds into the models directory (ModelsDir)
// under the file's own name; Resolve then finds them there. The models
// directory is flat, so two references whose files share a name share a
// local file: pulling the second replaces the first.
package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// EnvModels names the environment variable that sets the models directory,
// which is also the first place a model is looked for.
const EnvModels = "TAMP_MODELS"

// DefaultModel is the file name Resolve prefers when no model is named.
const DefaultModel = "stories260K.gguf"

// DefaultRef is where to get DefaultModel: Andrej Karpathy's 260K-parameter
// TinyStories model as converted to GGUF by ggml-org, about 1.2 MB.
const DefaultRef = "hf:ggml-org/models/tinyllamas/stories260K.gguf"

// knownFiles holds the sha256 of files whose references are written into
// tamp's messages, so pulling them is verified even when the server does not
// state a checksum.
var knownFiles = map[string]string{
	DefaultRef: "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
}

// DefaultBaseURL is the Hugging Face server hf: references are fetched from.
const DefaultBaseURL = "https://huggingface.co"

// ModelsDir returns the directory tamp pull downloads into: $TAMP_MODELS if
// set, else "tamp/models" inside the user's cache directory
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches
// on macOS, %LocalAppData% on Windows), else, when the system names no cache
// directory (no $HOME), "tamp/models" in the temporary directory. The
// directory need not exist yet; Pull creates it.
func ModelsDir() string {
	if d := os.Getenv(EnvModels); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "tamp", "models")
	}
	return filepath.Join(os.TempDir(), "tamp", "models")
}

// SearchDirs returns, in lookup order and without duplicates, the
// directories a bare model name is looked for in:
//
//  1. $TAMP_MODELS, when set;
//  2. ../shared/testdata relative to the working directory, then
//     ../shared/testdata beside the tamp repository that contains the
//     working directory (found by walking up to its go.mod), where tamp's
//     test models live;
//  3. ModelsDir, when $TAMP_MODELS is not set (otherwise it is item 1).
//
// The paths are absolute and need not exist.
func SearchDirs() []string {
	var dirs []string
	add := func(d string) {
		if d == "" {
			return
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		d = filepath.Clean(d)
		for _, have := range dirs {
			if have == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(os.Getenv(EnvModels))
	if wd, err := os.Getwd(); err == nil {
		add(filepath.Join(wd, "..", "shared", "testdata"))
		if root := repoRoot(wd); root != "" {
			add(filepath.Join(root, "..", "shared", "testdata"))
		}
	}
	add(ModelsDir())
	return dirs
}

// repoRoot returns the nearest directory at or above dir whose go.mod
// declares module tamp, or "". Another module's go.mod does not stop the
// walk: tamp may sit inside a larger checkout.
func repoRoot(dir string) string {
	for {
		if isTampModule(filepath.Join(dir, "go.mod")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isTampModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == "tamp"
		}
	}
	return false
}

// Resolve turns a model reference (see the package comment) into the path of
// a local file.
//
// An empty ref picks the default model: DefaultModel from the first of
// SearchDirs that has it, else the first *.gguf file (by name) in the first
// directory that has one. If there is none, the error says how to get one.
//
// A hf: or URL reference resolves to its file in ModelsDir if Pull has
// downloaded it; otherwise the error gives the tamp pull command to run.
func Resolve(ref string) (string, error) {
	if ref == "" {
		return defaultModel()
	}
	if isRemote(ref) {
		r, err := parseRemote(ref, DefaultBaseURL)
		if err != nil {
			return "", err
		}
		p := filepath.Join(ModelsDir(), r.name)
		if isFile(p) {
			return p, nil
		}
		if isFile(p + partialSuffix) {
			return "", fmt.Errorf("model %s is only partly downloaded (%s); finish the download with:\n  tamp pull %s", ref, p+partialSuffix, ref)
		}
		return "", fmt.Errorf("model %s is not downloaded (no %s); download it with:\n  tamp pull %s", ref, p, ref)
	}
	if fi, err := os.Stat(ref); err == nil {
		if fi.IsDir() {
			return "", fmt.Errorf("model %s is a directory; name a model file inside it", ref)
		}
		return ref, nil
	}
	dirs := SearchDirs()
	if filepath.Base(ref) == ref {
		names := []string{ref}
		if filepath.Ext(ref) == "" {
			names = append(names, ref+".gguf")
		}
		for _, d := range dirs {
			for _, n := range names {
				if p := filepath.Join(d, n); isFile(p) {
					return p, nil
				}
			}
		}
		return "", fmt.Errorf("model %s not found: it is not a file here, nor in any of\n  %s\n(set %s to the directory holding it, or give its path)",
			ref, strings.Join(dirs, "\n  "), EnvModels)
	}
	return "", fmt.Errorf("model file %s not found", ref)
}

func defaultModel() (string, error) {
	dirs := SearchDirs()
	for _, d := range dirs {
		if p := filepath.Join(d, DefaultModel); isFile(p) {
			return p, nil
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d) // sorted by name
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.EqualFold(filepath.Ext(e.Name()), ".gguf") {
				continue
			}
			if p := filepath.Join(d, e.Name()); isFile(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no model given and none found: no *.gguf file in any of\n  %s\n"+
		"Download a small one (1.2 MB) with:\n  tamp pull %s\n"+
		"or set %s to a directory holding .gguf files, or name a model file (-m PATH)",
		strings.Join(dirs, "\n  "), DefaultRef, EnvModels)
}

// isFile reports whether p is (or links to) a regular file.
func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// remote is a parsed hf: or URL reference.
type remote struct {
	ref  string
	url  string
	name string // local file name
	hf   bool
}

func isRemote(ref string) bool {
	l := strings.ToLower(ref)
	return strings.HasPrefix(l, "hf:") || strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// parseRemote maps a hf: reference onto baseURL's resolve endpoint, or checks
// an http(s) URL, and picks the local file name.
func parseRemote(ref, baseURL string) (remote, error) {
	if len(ref) >= 3 && strings.EqualFold(ref[:3], "hf:") {
		return parseHF(ref, baseURL)
	}
	u, err := url.Parse(ref)
	if err != nil {
		return remote{}, fmt.Errorf("bad model URL %q: %v", ref, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return remote{}, fmt.Errorf("bad model URL %q: only http and https are supported", ref)
	}
	if u.Host == "" {
		return remote{}, fmt.Errorf("bad model URL %q: no host", ref)
	}
	name := path.Base(u.Path)
	if err := checkName(name); err != nil {
		return remote{}, fmt.Errorf("bad model URL %q: %v", ref, err)
	}
	return remote{ref: ref, url: u.String(), name: name}, nil
}

func parseHF(ref, baseURL string) (remote, error) {
	bad := func(why string) (remote, error) {
		return remote{}, fmt.Errorf("bad Hugging Face reference %q: %s (want hf:OWNER/REPO/PATH/FILE or hf:OWNER/REPO@REVISION/PATH/FILE, e.g. %s)", ref, why, DefaultRef)
	}
	parts := strings.Split(ref[3:], "/")
	if len(parts) < 3 {
		return bad("too few parts")
	}
	owner, repo, rev := parts[0], parts[1], "main"
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo, rev = repo[:i], repo[i+1:]
		if rev == "" {
			return bad("empty revision after @")
		}
	}
	segs := append([]string{owner, repo}, parts[2:]...)
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `\?#`) {
			return bad(fmt.Sprintf("bad path element %q", s))
		}
	}
	name := parts[len(parts)-1]
	if err := checkName(name); err != nil {
		return bad(err.Error())
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	esc := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = url.PathEscape(s)
		}
		return strings.Join(out, "/")
	}
	u := strings.TrimRight(baseURL, "/") + "/" + esc([]string{owner, repo}) +
		"/resolve/" + url.PathEscape(rev) + "/" + esc(parts[2:])
	return remote{ref: ref, url: u, name: name, hf: true}, nil
}

// checkName rejects local file names that would escape the models directory
// or clash with its bookkeeping.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || name == "/":
		return errors.New("it names no file")
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0):
		return fmt.Errorf("file name %q holds a path separator", name)
	case strings.HasSuffix(name, partialSuffix):
		return fmt.Errorf("file name %q ends in %s, which tamp uses for unfinished downloads", name, partialSuffix)
	}
	return nil
}
