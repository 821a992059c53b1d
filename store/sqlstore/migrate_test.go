package sqlstore

import (
	"slices"
	"strings"
	"testing"
)

func TestMigrationsMatch(t *testing.T) {
	lite, err := loadMigrations(newQueries(SQLite).dir)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(newQueries(PostgreSQL).dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name || lite[i].version != i+1 {
			t.Errorf("migration %d: %s (SQLite), %s (PostgreSQL)", i+1, lite[i].name, pg[i].name)
		}
		// Both dialects build the same tables, in the same order.
		if got, want := creates(pg[i].statements), creates(lite[i].statements); !slices.Equal(got, want) {
			t.Errorf("migration %s creates %v on PostgreSQL, %v on SQLite", lite[i].name, got, want)
		}
		if len(lite[i].statements) != len(pg[i].statements) {
			t.Errorf("migration %s: %d SQLite statements, %d PostgreSQL ones", lite[i].name, len(lite[i].statements), len(pg[i].statements))
		}
	}
}

func creates(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		for line := range strings.Lines(s) {
			if name, ok := strings.CutPrefix(line, "CREATE TABLE "); ok {
				out = append(out, strings.Fields(name)[0])
			}
		}
	}
	return out
}

func TestSplitStatements(t *testing.T) {
	ms, err := loadMigrations(newQueries(SQLite).dir)
	if err != nil {
		t.Fatal(err)
	}
	// 0001 makes six tables and fills the prekey counter's row.
	if n := len(ms[0].statements); n != 7 {
		t.Errorf("0001 splits into %d statements, want 7", n)
	}
	for _, s := range ms[0].statements {
		if strings.HasSuffix(s, ";") || !hasCode(s) {
			t.Errorf("bad statement %q", s)
		}
	}
	if hasCode("-- only a comment\n\n  -- another\n") || !hasCode("-- c\nSELECT 1") {
		t.Error("hasCode")
	}
}

func TestRebind(t *testing.T) {
	q := "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = ?"
	if got := PostgreSQL.rebind(q); got != "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = $3" {
		t.Errorf("PostgreSQL rebind: %s", got)
	}
	if got := SQLite.rebind(q); got != q {
		t.Errorf("SQLite rebind: %s", got)
	}
	if got := PostgreSQL.preKeyInsert(2); got != "INSERT INTO ratchetkit_prekeys (id, private_key) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO NOTHING" {
		t.Errorf("preKeyInsert: %s", got)
	}
	for _, d := range []Dialect{SQLite, PostgreSQL} {
		if newQueries(d) == nil {
			t.Errorf("no queries for %v", d)
		}
	}
}
