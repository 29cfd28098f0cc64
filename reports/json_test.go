package reports

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ragparity/ragparity/gate"
)

var schemaPath = filepath.Join("..", "schemas", "verdict.schema.json")

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	sch, err := jsonschema.NewCompiler().Compile(schemaPath)
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, doc []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return sch.Validate(inst)
}

// fill sets every field of the struct v points to (recursively, one
// element per slice and map), so that a field added to the Go types
// shows up in JSON and must be in the schema.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(fixtureTime))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		switch v.Type() {
		case reflect.TypeOf(gate.Status("")):
			v.SetString(string(gate.Pass))
		default:
			v.SetString("x")
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(1)
	case reflect.Float64:
		v.SetFloat(0.5)
	}
}

func TestJSONSchema(t *testing.T) {
	sch := compileSchema(t)

	for _, fx := range fixtures {
		t.Run("Fixture"+fx.name, func(t *testing.T) {
			if err := validate(t, sch, renderT(t, FormatJSON, fx.model(t))); err != nil {
				t.Fatalf("report.json does not match the schema: %v", err)
			}
		})
	}

	t.Run("EveryGoField", func(t *testing.T) {
		// A field added to gate.Verdict or to the detail types without a
		// schema update fails here (the schema forbids unknown fields).
		var m Model
		fill(reflect.ValueOf(&m).Elem())
		if err := validate(t, sch, renderT(t, FormatJSON, &m)); err != nil {
			t.Fatalf("a verdict with every Go field set does not match the schema: %v", err)
		}
	})

	t.Run("BareVerdict", func(t *testing.T) {
		// What ragparity verify --json prints.
		b, err := json.MarshalIndent(failingModel(t).Verdict, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, sch, b); err != nil {
			t.Fatalf("a bare verdict does not match the schema: %v", err)
		}
	})

	for _, tc := range []struct{ name, from, to string }{
		{"UnknownDecision", `"decision": "degraded"`, `"decision": "maybe"`},
		{"UnknownStatus", `"status": "pass"`, `"status": "green"`},
		{"UnknownField", `"release": "2025.03.1",`, `"release": "2025.03.1", "extra": 1,`},
		{"MissingChecks", `"checks": [`, `"checks_": [`},
		{"DriftNotNumber", `"drift": 0.041`, `"drift": "0.041"`},
		{"DeltaSOverOne", `"eu": 0.31`, `"eu": 1.31`},
		{"NegativeBucket", `"differing": [
          17,`, `"differing": [
          -17,`},
	} {
		t.Run("Rejects"+tc.name, func(t *testing.T) {
			doc := string(renderT(t, FormatJSON, failingModel(t)))
			if !strings.Contains(doc, tc.from) {
				t.Fatalf("fixture JSON has no %q to change", tc.from)
			}
			doc = strings.Replace(doc, tc.from, tc.to, 1)
			if err := validate(t, sch, []byte(doc)); err == nil {
				t.Fatalf("schema accepted a verdict with %s", tc.to)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	m := failingModel(t)
	got, err := Decode(bytes.NewReader(renderT(t, FormatJSON, m)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Verdict, m.Verdict) {
		t.Errorf("verdict after a round trip:\n got %+v\nwant %+v", got.Verdict, m.Verdict)
	}
	if !reflect.DeepEqual(got.Probes, m.Probes) || !reflect.DeepEqual(got.BucketMaps, m.BucketMaps) || !reflect.DeepEqual(got.BlobDiffs, m.BlobDiffs) {
		t.Errorf("detail after a round trip differs:\n got %+v %+v %+v\nwant %+v %+v %+v", got.Probes, got.BucketMaps, got.BlobDiffs, m.Probes, m.BucketMaps, m.BlobDiffs)
	}
	// The details ride beside the signed fields without touching them.
	if err := got.Verdict.Verify(fixtureKey.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("signature of report.json's verdict: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := string(renderT(t, FormatJSON, inconclusiveModel(t)))
	for _, tc := range []struct{ name, in, want string }{
		{"Empty", "", "empty"},
		{"NotJSON", "<html></html>", "invalid character"},
		{"Array", "[]", "cannot unmarshal array"},
		{"TwoValues", good + good, "more than one JSON value"},
		{"NoID", strings.Replace(good, `"id": "v2025`, `"id_": "v2025`, 1), `no "id"`},
		{"BadDecision", strings.Replace(good, `"decision": "inconclusive"`, `"decision": "maybe"`, 1), `"decision" is "maybe"`},
		{"NoChecks", `{"id": "v1", "decision": "pass", "checks": []}`, `no "checks"`},
		{"BadStatus", strings.Replace(good, `"status": "pass"`, `"status": "green"`, 1), `status "green"`},
		{"UnnamedCheck", strings.Replace(good, `"name": "index_hash"`, `"name": ""`, 1), "checks[0] has no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("Decode accepted %q", cut(tc.in, 80))
			}
			if !errors.Is(err, ErrNotVerdict) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrNotVerdict mentioning %q", err, tc.want)
			}
		})
	}
}

func TestJSONRejectsNaN(t *testing.T) {
	m := failingModel(t)
	m.Probes.Questions[3].DeltaS["us"] = nan()
	for _, f := range []Format{FormatJSON, FormatHTML} {
		var buf bytes.Buffer
		if err := Render(&buf, f, m); err == nil || !strings.Contains(err.Error(), "q-04") {
			t.Errorf("%s: error = %v, want one naming question q-04", f, err)
		}
	}
}
