package pgvector_test

import (
	"context"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/verifier"
)

// TestIDsUnique: a table whose id has a primary key or unique index cannot
// hold an id twice, and says so (the verifier then keeps no duplicate
// map); a table without one does not, and its duplicates are still found.
func TestIDsUnique(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range []struct {
		name, ddl string
		unique    bool
	}{
		{"PrimaryKey", "id bigint PRIMARY KEY, embedding vector(2), metadata jsonb, content text", true},
		{"NoKey", "id bigint, embedding vector(2), metadata jsonb, content text", false},
		{"KeyOnAnotherColumn", "pk serial PRIMARY KEY, id bigint, embedding vector(2), metadata jsonb, content text", false},
		{"UniqueWithAnotherColumn", "id bigint, embedding vector(2), metadata jsonb, content text, UNIQUE (id, content)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			table := uniqueTable()
			id := pgx.Identifier{table}.Sanitize()
			t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id) })
			if _, err := conn.Exec(ctx, "CREATE TABLE "+id+" ("+c.ddl+")"); err != nil {
				t.Fatal(err)
			}
			s := open(t, tableURL(pgtest.URL(), table))
			got, err := s.(adapters.UniqueIDs).IDsUnique(ctx)
			if err != nil || got != c.unique {
				t.Fatalf("IDsUnique = %v, %v; want %v", got, err, c.unique)
			}
			if c.unique {
				return
			}
			if _, err := conn.Exec(ctx, "INSERT INTO "+id+" (id, embedding, content) VALUES (1, '[1,0]', 'a'), (1, '[1,0]', 'b'), (2, '[0,1]', 'c')"); err != nil {
				t.Fatal(err)
			}
			sc, err := verifier.HashStore(ctx, s, verifier.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sc.Duplicates["1"] != 2 || len(sc.Duplicates) != 1 {
				t.Errorf("duplicates = %v, want id 1 twice", sc.Duplicates)
			}
		})
	}
}
