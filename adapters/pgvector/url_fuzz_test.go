package pgvector_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
)

// FuzzOpenURL: opening never panics, needs no server (the pool dials
// lazily), and no error echoes the password.
func FuzzOpenURL(f *testing.F) {
	f.Add("postgres://u:pw-SECRET@127.0.0.1:5432/test?sslmode=disable&table=chunks&id=id&vector=embedding")
	f.Add("postgres://u:pw-SECRET@h:12ab/x?table=t")
	f.Add("postgresql://u:pw-SECRET@/db?host=/tmp&table=a.b&payload=meta&text=c")
	f.Add("postgres://u:pw-SECRET@h/db")
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := adapters.OpenVector(context.Background(), raw)
		if err != nil {
			u, perr := url.Parse(raw)
			if perr != nil || u.User == nil {
				return
			}
			if pw, ok := u.User.Password(); ok && len(pw) >= 6 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error leaks the password: %v", err)
			}
			return
		}
		s.Close()
	})
}
