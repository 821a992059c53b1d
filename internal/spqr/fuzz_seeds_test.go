package spqr

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var writeFuzzSeeds = flag.Bool("fuzzseeds", false, "write the seed corpora of FuzzParseMessage, FuzzParseRatchetEdits and FuzzEpochs under testdata/fuzz")

// TestWriteFuzzSeeds writes the committed seed corpora of the fuzz
// targets in fuzz_*_test.go from the seeded conversations that make them:
//
//	go test ./internal/spqr -run TestWriteFuzzSeeds -fuzzseeds
//
// Without the flag it checks that every seed file it would write exists,
// so that a target never runs without its corpus.
func TestWriteFuzzSeeds(t *testing.T) {
	files := map[string]string{}
	for _, s := range fuzzMessageSeeds(t) {
		files["FuzzParseMessage/"+s.name] = fmt.Sprintf("uint8(%d)\n[]byte(%q)\n", s.which, s.msg)
	}
	for _, s := range fuzzStateSeeds() {
		files["FuzzParseRatchetEdits/"+s.name] = fmt.Sprintf("uint8(%d)\n[]byte(%q)\n", s.which, s.edits)
	}
	for _, s := range fuzzEpochSeeds() {
		files["FuzzEpochs/"+s.name] = fmt.Sprintf("[]byte(%q)\n", s.script)
	}
	for name, body := range files {
		path := filepath.Join("testdata", "fuzz", filepath.FromSlash(name))
		if !*writeFuzzSeeds {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed %s is missing (run with -fuzzseeds)", name)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("go test fuzz v1\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
