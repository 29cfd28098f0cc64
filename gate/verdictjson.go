package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// ErrAmbiguousJSON is wrapped by DecodeVerdict when the verdict's JSON
// could be read as another verdict than the one its signature covers.
var ErrAmbiguousJSON = errors.New("not covered by the signature")

// DecodeVerdict reads a verdict's JSON strictly: an object with a key
// twice, a key in another case than the schema's (encoding/json would fold
// it onto the field, another reader would not), or a key the schema does
// not define is refused, wrapping ErrAmbiguousJSON, before anyone checks
// the signature. Other malformed input is a plain error.
func DecodeVerdict(b []byte) (*Verdict, error) {
	var v Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if err := noDuplicateKeys(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAmbiguousJSON, err)
	}
	// Every key as written must be one the verdict writes back, with the
	// same value: this refuses unknown and case-variant keys and any value
	// decoding would change.
	var orig, back any
	if err := json.Unmarshal(b, &orig); err != nil {
		return nil, err
	}
	rb, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(rb, &back); err != nil {
		return nil, err
	}
	if path, ok := sameJSON(orig, back, "$"); !ok {
		return nil, fmt.Errorf("%w: %s is not part of the verdict schema as written (unknown key, key in another case, or a value the schema reads differently)", ErrAmbiguousJSON, path)
	}
	return &v, nil
}

// noDuplicateKeys walks the JSON and refuses an object with a key twice.
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q appears twice in %s", k, path)
				}
				seen[k] = true
				if err := walk(path + "." + k); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk("$")
}

// sameJSON compares decoded JSON; an object key of a that b lacks is a
// difference, and so is a key of b that a lacks unless its value is a
// zero the writer omits ([] or {} or "" or false or 0 or null).
func sameJSON(a, b any, path string) (string, bool) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return path, false
		}
		for k, av := range x {
			bv, ok := y[k]
			if !ok {
				if isZeroJSON(av) && verdictKeys()[k] && !hasFold(y, k) {
					continue
				}
				return path + "." + k, false
			}
			if p, ok := sameJSON(av, bv, path+"."+k); !ok {
				return p, false
			}
		}
		for k, bv := range y {
			if _, ok := x[k]; !ok && !isZeroJSON(bv) {
				return path + "." + k, false
			}
		}
		return "", true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			if len(x) == 0 && b == nil {
				return "", true
			}
			return path, false
		}
		for i := range x {
			if p, ok := sameJSON(x[i], y[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	case nil:
		if b == nil || isZeroJSON(b) {
			return "", true
		}
		return path, false
	}
	if reflect.DeepEqual(a, b) {
		return "", true
	}
	return path, false
}

var (
	verdictKeysOnce sync.Once
	verdictKeySet   map[string]bool
)

// verdictKeys are the JSON names of every field in the verdict's types.
func verdictKeys() map[string]bool {
	verdictKeysOnce.Do(func() {
		verdictKeySet = map[string]bool{}
		seen := map[reflect.Type]bool{}
		var walk func(t reflect.Type)
		walk = func(t reflect.Type) {
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct || seen[t] {
				return
			}
			seen[t] = true
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				name := strings.Split(f.Tag.Get("json"), ",")[0]
				if name == "-" {
					continue
				}
				if name == "" {
					name = f.Name
				}
				verdictKeySet[name] = true
				walk(f.Type)
			}
		}
		walk(reflect.TypeOf(Verdict{}))
	})
	return verdictKeySet
}

func hasFold(m map[string]any, k string) bool {
	for mk := range m {
		if mk != k && strings.EqualFold(mk, k) {
			return true
		}
	}
	return false
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
