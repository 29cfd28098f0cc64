// Package pgtest names the PostgreSQL database the tests and benchmarks
// use (scripts/services.sh starts it): RAGPARITY_PG_URL, else the local
// default.
package pgtest

import (
	"net/url"
	"os"
)

// DefaultURL is the database scripts/services.sh serves on loopback.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL is RAGPARITY_PG_URL, or DefaultURL when it is unset.
func URL() string {
	if u := os.Getenv("RAGPARITY_PG_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// TableURL is URL with the query parameter table set, and each key, value
// pair of kv after it (pgvector's payload, text, id, vector, ...).
func TableURL(table string, kv ...string) string {
	u, err := url.Parse(URL())
	if err != nil {
		panic("RAGPARITY_PG_URL: " + err.Error())
	}
	q := u.Query()
	q.Set("table", table)
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}
