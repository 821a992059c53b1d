package depcheck

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ratchetkit/ratchetkit"

// allowed reports whether a library package may depend on the non-standard
// package path. The module's own packages are allowed, except the ones that
// exist only for tests.
func allowed(path string) bool {
	under := func(root string) bool { return path == root || strings.HasPrefix(path, root+"/") }
	switch {
	case under(module + "/internal/wycheproof"), under(module + "/internal/depcheck"), under(module + "/internal/sqltest"),
		under(module + "/internal/testutil"):
		return false
	case under(module):
		return true
	case under("golang.org/x/crypto"), under("filippo.io/edwards25519"):
		return true
	case path == "golang.org/x/sys/cpu":
		// x/crypto's chacha20poly1305 and friends pick their assembly
		// with it on amd64 and arm64.
		return true
	}
	return false
}

func TestAllowed(t *testing.T) {
	for path, want := range map[string]bool{
		module + "/aead":                        true,
		module + "/internal/kdf":                true,
		module + "/internal/wycheproof":         false,
		module + "/internal/sqltest":            false,
		module + "/internal/testutil":           false,
		"golang.org/x/crypto/chacha20poly1305":  true,
		"golang.org/x/crypto":                   true,
		"golang.org/x/cryptography":             false,
		"golang.org/x/sys/cpu":                  true,
		"golang.org/x/sys/unix":                 false,
		"filippo.io/edwards25519/field":         true,
		"filippo.io/edwards25519x":              false,
		"github.com/stretchr/testify/assert":    false,
		"modernc.org/sqlite":                    false,
		"github.com/jackc/pgx/v5/stdlib":        false,
		"github.com/ratchetkit/ratchetkitextra": false,
	} {
		if got := allowed(path); got != want {
			t.Errorf("allowed(%q) = %v, want %v", path, got, want)
		}
	}
}

func goList(t *testing.T, root string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.Fields(string(out))
}

// drivers are the database drivers a store backend may import directly.
var drivers = []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}

func isDriver(path string) bool {
	for _, d := range drivers {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// libraryPackages returns the packages the policy applies to: everything in
// the module but examples, commands, testdata and internal packages (those
// are checked through the packages that import them). Store packages below
// store/ are returned apart.
func libraryPackages(t *testing.T, root string) (lib, backends []string) {
	for _, p := range goList(t, root, "./...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
		parts := strings.Split(rel, "/")
		switch {
		case p == module:
			lib = append(lib, p)
		case slices.ContainsFunc(parts, func(s string) bool {
			return s == "examples" || s == "internal" || s == "cmd" || s == "testdata"
		}):
		case parts[0] == "store" && len(parts) > 1:
			backends = append(backends, p)
		default:
			lib = append(lib, p)
		}
	}
	return lib, backends
}

// deps returns pkg's transitive dependencies, standard and not.
func deps(t *testing.T, root, pkg string) (std, other []string) {
	f := goList(t, root, "-deps", "-test=false", "-f", "{{.ImportPath}}:{{.Standard}}", pkg)
	for _, line := range f {
		path, isStd, _ := strings.Cut(line, ":")
		if isStd == "true" {
			std = append(std, path)
		} else {
			other = append(other, path)
		}
	}
	return std, other
}

func checkStrict(t *testing.T, root, pkg string) {
	std, other := deps(t, root, pkg)
	for _, d := range other {
		if !allowed(d) {
			t.Errorf("%s depends on %s, outside the dependency policy", pkg, d)
		}
	}
	// A library that links package testing registers its flags in every
	// binary that imports it; only test-support packages (…test) may.
	if slices.Contains(std, "testing") && !strings.HasSuffix(pkg, "test") {
		t.Errorf("%s depends on package testing", pkg)
	}
}

// TestLibraryDependencies runs go list -deps over the library packages and
// fails on any dependency outside the policy, naming the package that
// pulls it in. The store package itself is held to the policy like the
// rest: SQL code there works through database/sql and imports no driver.
// A backend below store/ that imports a driver directly may depend on
// whatever that driver needs; its other direct imports must still be
// allowed. A backend that imports no driver is checked like the library.
func TestLibraryDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root := filepath.Join("..", "..")
	lib, backends := libraryPackages(t, root)
	if !slices.Contains(lib, module+"/aead") {
		t.Fatalf("library packages %v lack aead: the listing is wrong", lib)
	}
	t.Logf("library packages: %v; store backends: %v", lib, backends)
	for _, pkg := range lib {
		checkStrict(t, root, pkg)
	}
	for _, pkg := range backends {
		imports := goList(t, root, "-f", `{{join .Imports "\n"}}`, pkg)
		if !slices.ContainsFunc(imports, isDriver) {
			checkStrict(t, root, pkg)
			continue
		}
		std, _ := deps(t, root, pkg)
		for _, imp := range imports {
			if !slices.Contains(std, imp) && !allowed(imp) && !isDriver(imp) {
				t.Errorf("store backend %s imports %s, neither allowed nor a driver", pkg, imp)
			}
		}
	}
}
