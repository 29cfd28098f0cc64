package embed_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/hashembed"
)

func TestOpen(t *testing.T) {
	t.Run("UnknownBackend", func(t *testing.T) {
		_, err := embed.Open("nope://?api_key=sk-secret")
		if err == nil || !strings.Contains(err.Error(), "unknown backend") || strings.Contains(err.Error(), "sk-secret") {
			t.Fatalf("err = %v; want unknown backend, without the key", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if _, err := embed.Open(" "); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("NotAName", func(t *testing.T) {
		if _, err := embed.Open("hash?dim=3"); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("Schemes", func(t *testing.T) {
		if got := strings.Join(embed.Schemes(), ","); !strings.Contains(got, "hash") {
			t.Fatalf("Schemes() = %s, want hash among them", got)
		}
	})
}

func TestWords(t *testing.T) {
	got := strings.Join(embed.Words("IL-6's rôle in COVID-19: 2.5mg/kg!"), "|")
	if want := "il|6|s|rôle|in|covid|19|2|5mg|kg"; got != want {
		t.Fatalf("Words = %s, want %s", got, want)
	}
}

func TestNormalize(t *testing.T) {
	v := []float32{3, 4}
	if !embed.Normalize(v) || v[0] != 0.6 || v[1] != 0.8 {
		t.Fatalf("Normalize = %v", v)
	}
	if embed.Normalize([]float32{0, 0}) {
		t.Fatal("a zero vector cannot be normalised")
	}
}

func TestCounting(t *testing.T) {
	inner, err := embed.Open("hash://?dim=16")
	if err != nil {
		t.Fatal(err)
	}
	c := embed.NewCounting(inner)
	ctx := context.Background()
	if _, err := c.Embed(ctx, []string{"a", "b", "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Embed(ctx, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Calls(), int64(2); got != want {
		t.Errorf("Calls() = %d, want %d", got, want)
	}
	if got, want := c.Texts(), int64(4); got != want {
		t.Errorf("Texts() = %d, want %d", got, want)
	}
	if got, want := c.Distinct(), 3; got != want {
		t.Errorf("Distinct() = %d, want %d", got, want)
	}
	if got, want := c.Repeated(), int64(1); got != want {
		t.Errorf("Repeated() = %d, want %d", got, want)
	}
	if c.ModelTag() != inner.ModelTag() || c.Dim() != inner.Dim() {
		t.Error("Counting must not change ModelTag or Dim")
	}
	c.Reset()
	if c.Calls() != 0 || c.Texts() != 0 || c.Distinct() != 0 {
		t.Error("Reset left counts")
	}
}

func TestConfigError(t *testing.T) {
	_, err := embed.Open("hash://?dim=2")
	var ce *embed.ConfigError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "hash: dim=") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzOpen: no spec makes Open panic, and errors never echo a key.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{"hash", "hash://?dim=64", "hash://?dim=x&bigrams=0", "glove", "nope://?api_key=sk-SECRET", "://", "hash://h/p?dim=8", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		_, err := embed.Open(spec)
		if err != nil && strings.Contains(spec, "api_key=sk-SECRET") && strings.Contains(err.Error(), "sk-SECRET") {
			t.Fatalf("error echoes the key: %v", err)
		}
	})
}
