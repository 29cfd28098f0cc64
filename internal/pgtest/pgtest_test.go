package pgtest

import (
	"net/url"
	"testing"
)

func TestTableURL(t *testing.T) {
	t.Setenv("RAGPARITY_PG_URL", "")
	if URL() != DefaultURL {
		t.Fatalf("URL() = %q without RAGPARITY_PG_URL", URL())
	}
	t.Setenv("RAGPARITY_PG_URL", "postgres://u@db:5433/x?sslmode=require")
	u, err := url.Parse(TableURL("t1", "payload", "metadata", "text", "content"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "db:5433" || q.Get("sslmode") != "require" || q.Get("table") != "t1" || q.Get("payload") != "metadata" || q.Get("text") != "content" {
		t.Errorf("TableURL = %s", u)
	}
}
