package wycheproof

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHashDir checks the go.sum hash against a value computed with
// coreutils: the sha256sum lines of the files, named module@version/path
// and sorted, hashed again and base64-encoded.
func TestHashDir(t *testing.T) {
	files := map[string]string{"a.txt": "hello\n", "sub/b.json": "world"}
	const want = "h1:HOzmE6XFIboWBw7L+I0MOBYtZhew+07TCX8RKJXSJfQ="
	got, err := HashDir(writeTree(t, files), "example.com/m@v1.0.0")
	if err != nil || got != want {
		t.Fatalf("HashDir = %s, %v; want %s", got, err, want)
	}
	for name, change := range map[string]map[string]string{
		"content": {"a.txt": "hello!\n", "sub/b.json": "world"},
		"name":    {"a.txt": "hello\n", "sub/c.json": "world"},
		"extra":   {"a.txt": "hello\n", "sub/b.json": "world", "x": ""},
		"missing": {"a.txt": "hello\n"},
	} {
		if got, _ := HashDir(writeTree(t, change), "example.com/m@v1.0.0"); got == want {
			t.Errorf("%s changed, hash did not", name)
		}
	}
	if got, _ := HashDir(writeTree(t, files), "example.com/m@v1.0.1"); got == want {
		t.Error("version changed, hash did not")
	}
}

// TestFetchUnavailable checks that a machine without the module and
// without a proxy gets the "unavailable" error that makes tests skip, not
// a verification failure.
func TestFetchUnavailable(t *testing.T) {
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOMODCACHE", t.TempDir())
	_, err := fetch()
	var u errUnavailable
	if !errors.As(err, &u) {
		t.Fatalf("fetch without a proxy: %v, want an errUnavailable", err)
	}
}

// TestPinnedModule downloads (or finds in the module cache) the pinned
// module and checks it holds the vector files the primitives' tests use.
func TestPinnedModule(t *testing.T) {
	dir := Dir(t)
	for _, name := range []string{"x25519_test", "aes_gcm_test", "chacha20_poly1305_test", "hkdf_sha256_test", "hmac_sha256_test"} {
		f := Load[struct {
			Tests []Test `json:"tests"`
		}](t, name)
		n := 0
		for _, g := range f.TestGroups {
			n += len(g.Tests)
		}
		if n == 0 || n != f.NumberOfTests {
			t.Errorf("%s: %d tests in groups, numberOfTests %d", name, n, f.NumberOfTests)
		}
	}
	if got, err := HashDir(dir, Module+"@"+Version); err != nil || got != Hash {
		t.Errorf("HashDir(%s) = %s, %v", dir, got, err)
	}
}
