package pgvector_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
)

// Unknown query parameters reached PostgreSQL as runtime parameters
// ("unrecognized configuration parameter"), and schema=public;x was
// silently dropped (the default schema hashed instead).
func TestURLParameters(t *testing.T) {
	base := "postgres://u:pw@127.0.0.1:5432/db?table=t&"
	for _, tc := range []struct{ name, query, want string }{
		{"Unknown", "bogus=1", `"bogus"`},
		{"Typo", "tabel=x", `"tabel"`},
		{"Semicolon", "schema=public;x", "schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := adapters.OpenVector(context.Background(), base+tc.query)
			if err == nil {
				s.Close()
				t.Fatalf("OpenVector accepted ?%s", tc.query)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q: want it to name %s (and no password)", err, tc.want)
			}
			if tc.name == "Unknown" && !strings.Contains(err.Error(), "sslmode") {
				t.Errorf("error %q does not list the accepted parameters", err)
			}
		})
	}
	s, err := adapters.OpenVector(context.Background(), base+"sslmode=disable&application_name=rp&pool_max_conns=2&connect_timeout=5&search_path=public&schema=public")
	if err != nil {
		t.Fatalf("known pgx parameters refused: %v", err)
	}
	s.Close()
}
