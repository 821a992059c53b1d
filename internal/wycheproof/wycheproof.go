// Package wycheproof fetches Project Wycheproof's test vectors for the tests
// of ratchetkit's primitives. Only tests import it.
//
// The vectors come from the Go module github.com/c2sp/wycheproof at a pinned
// version, downloaded with `go mod download` through the module proxy the
// way the Go standard library's crypto tests fetch theirs: the vectors stay
// out of this repository, the module cache keeps them between runs, and the
// module's h1: hash, pinned here, plays the part go.sum plays for a
// dependency. The hash is checked twice: against the one the go command
// reports for the download, and against the files actually on disk.
//
// Without network access (and without a cached copy) the tests that need
// the vectors skip, saying why. With RATCHETKIT_REQUIRE_VECTORS=1 in the
// environment, as CI sets it, they fail instead.
package wycheproof

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

const (
	// Module and Version name the pinned vector release.
	Module  = "github.com/c2sp/wycheproof"
	Version = "v0.0.0-20260625212325-ee7b4f7e6119"
	// Hash is the module's go.sum hash (the dirhash "h1" of its files).
	Hash = "h1:jOCu6erj86P93+eFn8Qxp6XLwftn1nW0C9RUx7xZwZg="

	// RequireEnv names the variable that turns a skip into a failure.
	RequireEnv = "RATCHETKIT_REQUIRE_VECTORS"
)

// fetched caches the outcome of the download for the whole test binary.
var fetched = sync.OnceValues(fetch)

// errUnavailable marks failures that mean "no way to get the vectors here"
// (no go command, no network) rather than "the vectors are wrong".
type errUnavailable struct{ err error }

func (e errUnavailable) Error() string { return e.err.Error() }

// Dir returns the directory of the verified module. It skips t when the
// module cannot be downloaded, unless RATCHETKIT_REQUIRE_VECTORS=1, and
// fails t when the download does not match the pinned hash.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := fetched()
	if err == nil {
		return dir
	}
	if _, ok := err.(errUnavailable); ok && os.Getenv(RequireEnv) != "1" {
		t.Skipf("Wycheproof vectors unavailable (set %s=1 to make this a failure): %v", RequireEnv, err)
	}
	t.Fatalf("Wycheproof vectors: %v", err)
	return ""
}

func fetch() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", errUnavailable{fmt.Errorf("no go command to download %s@%s: %v", Module, Version, err)}
	}
	// Run outside any module, so the repository's go.mod and go.sum stay
	// untouched and play no part.
	tmp, err := os.MkdirTemp("", "ratchetkit-wycheproof-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	cmd := exec.Command(goTool, "mod", "download", "-json", Module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(),
		"GO111MODULE=on",
		"GOWORK=off",
		"GOFLAGS=",
		"GOTOOLCHAIN=local",
		// The pinned hash below is the authority; the checksum database
		// would only add a second network dependency.
		"GONOSUMDB="+Module,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct {
		Dir, Sum, Error string
	}
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		return "", fmt.Errorf("go mod download: unreadable output: %v", jerr)
	}
	if err != nil || info.Error != "" {
		msg := strings.TrimSpace(info.Error + "\n" + stderr.String())
		return "", errUnavailable{fmt.Errorf("go mod download %s@%s: %v: %s", Module, Version, err, msg)}
	}
	if info.Sum != Hash {
		return "", fmt.Errorf("go mod download reports hash %s for %s@%s, want %s", info.Sum, Module, Version, Hash)
	}
	got, err := HashDir(info.Dir, Module+"@"+Version)
	if err != nil {
		return "", err
	}
	if got != Hash {
		return "", fmt.Errorf("files in %s hash to %s, want %s", info.Dir, got, Hash)
	}
	return info.Dir, nil
}

// HashDir computes the go.sum "h1:" hash of the files under dir, named with
// prefix as the go command names a module's files: SHA-256 over the sorted
// lines "<hex SHA-256 of the file>  <prefix>/<slash-separated path>\n".
func HashDir(dir, prefix string) (string, error) {
	var names []string
	paths := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := prefix + "/" + filepath.ToSlash(rel)
		if strings.Contains(name, "\n") {
			return fmt.Errorf("file name with a newline in %s", dir)
		}
		names = append(names, name)
		paths[name] = path
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	summary := sha256.New()
	for _, name := range names {
		f, err := os.Open(paths[name])
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(summary, "%x  %s\n", h.Sum(nil), name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil)), nil
}

// File is the common frame of a Wycheproof vector file; G is the test group
// type of its schema.
type File[G any] struct {
	Algorithm     string          `json:"algorithm"`
	Schema        string          `json:"schema"`
	NumberOfTests int             `json:"numberOfTests"`
	Notes         map[string]Note `json:"notes"`
	TestGroups    []G             `json:"testGroups"`
}

// Note describes a flag.
type Note struct {
	BugType     string `json:"bugType"`
	Description string `json:"description"`
}

// Load reads testvectors_v1/<name>.json from the module into a File,
// skipping or failing t as [Dir] does.
func Load[G any](t testing.TB, name string) *File[G] {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), "testvectors_v1", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	f := new(File[G])
	if err := json.Unmarshal(b, f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// Test holds the fields every Wycheproof test case has.
type Test struct {
	ID      int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"` // "valid", "invalid" or "acceptable"
}

// HasFlag reports whether the test case carries flag.
func (tc *Test) HasFlag(flag string) bool { return slices.Contains(tc.Flags, flag) }

// Name is a subtest name for the case.
func (tc *Test) Name() string { return fmt.Sprintf("tc%d", tc.ID) }

// Hex is a byte string written in hex in the vector files; the tests' own
// JSON files (testdata/rfc, testdata/aead) use the same type.
type Hex = testutil.Hex
