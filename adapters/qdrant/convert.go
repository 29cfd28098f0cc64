package qdrant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"github.com/ragparity/ragparity/parity"
)

// ---- ids ----

func idFromProto(id *qdrant.PointId) (parity.ID, error) {
	switch o := id.GetPointIdOptions().(type) {
	case *qdrant.PointId_Num:
		return parity.ID{Kind: parity.IDInt, S: strconv.FormatUint(o.Num, 10)}, nil
	case *qdrant.PointId_Uuid:
		u, ok := canonicalUUID(o.Uuid)
		if !ok {
			return parity.ID{}, fmt.Errorf("point id %q is not a UUID", o.Uuid)
		}
		return parity.ID{Kind: parity.IDUUID, S: u}, nil
	}
	return parity.ID{}, fmt.Errorf("point without id")
}

func idToProto(id parity.ID) (*qdrant.PointId, error) {
	switch id.Kind {
	case parity.IDInt:
		n, err := strconv.ParseUint(id.S, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("point id %q: Qdrant integer ids are unsigned 64-bit integers", id.S)
		}
		return qdrant.NewIDNum(n), nil
	case parity.IDUUID:
		u, ok := canonicalUUID(id.S)
		if !ok {
			return nil, fmt.Errorf("point id %q is not a UUID", id.S)
		}
		return qdrant.NewIDUUID(u), nil
	}
	return nil, fmt.Errorf("point id %q: string ids are not supported (Qdrant ids are unsigned integers or UUIDs)", id.S)
}

// canonicalUUID returns the lower-case hyphenated form of a UUID given
// hyphenated or as 32 hex digits.
func canonicalUUID(s string) (string, bool) {
	t := strings.ToLower(s)
	if len(t) == 36 {
		if t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
			return "", false
		}
		t = t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	}
	if len(t) != 32 {
		return "", false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return t[0:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:], true
}

// ---- vectors ----

// vectorOutput converts one output vector: dense (the newer `dense`
// oneof, or the deprecated flat `data` field of Qdrant 1.x), sparse
// (indices sorted ascending, each value kept with its index) or a
// multivector (its vectors in stored order).
func vectorOutput(name string, v *qdrant.VectorOutput) (parity.NamedVector, error) {
	nv := parity.NamedVector{Name: name}
	switch o := v.GetVector().(type) {
	case *qdrant.VectorOutput_Dense:
		nv.Values = o.Dense.GetData()
	case *qdrant.VectorOutput_Sparse:
		return sparseVector(nv, o.Sparse.GetIndices(), o.Sparse.GetValues())
	case *qdrant.VectorOutput_MultiDense:
		return multiVector(nv, o.MultiDense.GetVectors())
	case nil:
		switch {
		case v.GetIndices() != nil:
			return sparseVector(nv, v.GetIndices().GetData(), v.GetData())
		case v.VectorsCount != nil:
			n := int(v.GetVectorsCount())
			if n <= 0 || len(v.GetData())%n != 0 {
				return nv, fmt.Errorf("multivector of %d vectors with %d values", n, len(v.GetData()))
			}
			nv.Values, nv.Multi = v.GetData(), n
		default:
			nv.Values = v.GetData()
		}
	default:
		return nv, fmt.Errorf("unsupported vector type %T", o)
	}
	return nv, nil
}

// sparseVector sorts a sparse vector's (index, value) pairs by index; a
// repeated index is an error.
func sparseVector(nv parity.NamedVector, idx []uint32, vals []float32) (parity.NamedVector, error) {
	if len(idx) != len(vals) {
		return nv, fmt.Errorf("sparse vector with %d indices and %d values", len(idx), len(vals))
	}
	order := make([]int, len(idx))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return idx[order[a]] < idx[order[b]] })
	nv.Sparse = true
	nv.Indices = make([]uint32, len(idx))
	nv.Values = make([]float32, len(idx))
	for i, j := range order {
		nv.Indices[i], nv.Values[i] = idx[j], vals[j]
		if i > 0 && nv.Indices[i-1] == nv.Indices[i] {
			return nv, fmt.Errorf("sparse vector repeats index %d", nv.Indices[i])
		}
	}
	return nv, nil
}

// multiVector flattens a multivector's vectors, which must share one
// dimension.
func multiVector(nv parity.NamedVector, vs []*qdrant.DenseVector) (parity.NamedVector, error) {
	if len(vs) == 0 {
		return nv, fmt.Errorf("empty multivector")
	}
	dim := len(vs[0].GetData())
	for i, d := range vs {
		if len(d.GetData()) != dim {
			return nv, fmt.Errorf("multivector: vector %d has %d dimensions, vector 0 has %d", i, len(d.GetData()), dim)
		}
		nv.Values = append(nv.Values, d.GetData()...)
	}
	nv.Multi = len(vs)
	return nv, nil
}

// appendVectors appends the point's vectors, sorted by name, to dst.
func appendVectors(dst []parity.NamedVector, vs *qdrant.VectorsOutput) ([]parity.NamedVector, error) {
	switch o := vs.GetVectorsOptions().(type) {
	case nil:
		return dst, nil
	case *qdrant.VectorsOutput_Vector:
		nv, err := vectorOutput("", o.Vector)
		if err != nil {
			return dst, err
		}
		return append(dst, nv), nil
	case *qdrant.VectorsOutput_Vectors:
		m := o.Vectors.GetVectors()
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			nv, err := vectorOutput(n, m[n])
			if err != nil {
				return dst, fmt.Errorf("vector %q: %w", n, err)
			}
			dst = append(dst, nv)
		}
		return dst, nil
	}
	return dst, fmt.Errorf("unsupported vectors type")
}

func vectorsToProto(vs []parity.NamedVector) (*qdrant.Vectors, error) {
	switch {
	case len(vs) == 0:
		return nil, nil
	case len(vs) == 1 && vs[0].Name == "" && !vs[0].Sparse && vs[0].Multi == 0:
		return qdrant.NewVectorsDense(vs[0].Values), nil
	case len(vs) == 1 && vs[0].Name == "":
		return &qdrant.Vectors{VectorsOptions: &qdrant.Vectors_Vector{Vector: vectorToProto(vs[0])}}, nil
	}
	m := make(map[string]*qdrant.Vector, len(vs))
	for _, v := range vs {
		if v.Name == "" {
			return nil, fmt.Errorf("the unnamed vector cannot be mixed with named vectors")
		}
		if _, dup := m[v.Name]; dup {
			return nil, fmt.Errorf("vector %q given twice", v.Name)
		}
		m[v.Name] = vectorToProto(v)
	}
	return qdrant.NewVectorsMap(m), nil
}

func vectorToProto(v parity.NamedVector) *qdrant.Vector {
	switch {
	case v.Sparse:
		return qdrant.NewVectorSparse(v.Indices, v.Values)
	case v.Multi > 0:
		dim := len(v.Values) / v.Multi
		vs := make([][]float32, v.Multi)
		for i := range vs {
			vs[i] = v.Values[i*dim : (i+1)*dim]
		}
		return qdrant.NewVectorMulti(vs)
	}
	return qdrant.NewVectorDense(v.Values)
}

// ---- payload ----

// payloadJSON encodes a payload map as a JSON object with sorted keys,
// leaving out skip. It returns nil when no key is left.
func payloadJSON(buf []byte, payload map[string]*qdrant.Value, skip string) ([]byte, error) {
	keys := make([]string, 0, len(payload))
	for k := range payload {
		if k != skip || skip == "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	b := append(buf[:0], '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		if b, err = appendJSONValue(b, payload[k]); err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONValue(b []byte, v *qdrant.Value) ([]byte, error) {
	switch k := v.GetKind().(type) {
	case nil, *qdrant.Value_NullValue:
		return append(b, "null"...), nil
	case *qdrant.Value_BoolValue:
		return strconv.AppendBool(b, k.BoolValue), nil
	case *qdrant.Value_IntegerValue:
		return strconv.AppendInt(b, k.IntegerValue, 10), nil
	case *qdrant.Value_DoubleValue:
		f := k.DoubleValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %v has no JSON form", f)
		}
		js, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		return append(b, js...), nil
	case *qdrant.Value_StringValue:
		return appendJSONString(b, k.StringValue), nil
	case *qdrant.Value_ListValue:
		b = append(b, '[')
		for i, e := range k.ListValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case *qdrant.Value_StructValue:
		fields := k.StructValue.GetFields()
		keys := make([]string, 0, len(fields))
		for f := range fields {
			keys = append(keys, f)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, f := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, fields[f]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("unsupported payload value %T", v.GetKind())
}

func appendJSONString(b []byte, s string) []byte {
	var w bytes.Buffer
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // strings always encode
	return append(b, bytes.TrimSuffix(w.Bytes(), []byte("\n"))...)
}

// payloadFromJSON decodes a JSON object into Qdrant payload values:
// integer literals that fit int64 become integer values, other numbers
// doubles.
func payloadFromJSON(js []byte) (map[string]*qdrant.Value, error) {
	if len(bytes.TrimSpace(js)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("payload is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("payload has data after the JSON object")
	}
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("payload must be a JSON object, not %T", v)
	}
	out := make(map[string]*qdrant.Value, len(obj))
	for k, e := range obj {
		qv, err := valueFromJSON(e)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k, err)
		}
		out[k] = qv
	}
	return out, nil
}

func valueFromJSON(v any) (*qdrant.Value, error) {
	switch x := v.(type) {
	case nil:
		return qdrant.NewValueNull(), nil
	case bool:
		return qdrant.NewValueBool(x), nil
	case string:
		return qdrant.NewValueString(x), nil
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			if n, err := x.Int64(); err == nil {
				return qdrant.NewValueInt(n), nil
			}
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return qdrant.NewValueDouble(f), nil
	case []any:
		vals := make([]*qdrant.Value, len(x))
		for i, e := range x {
			qv, err := valueFromJSON(e)
			if err != nil {
				return nil, err
			}
			vals[i] = qv
		}
		return qdrant.NewValueFromList(vals...), nil
	case map[string]any:
		fields := make(map[string]*qdrant.Value, len(x))
		for k, e := range x {
			qv, err := valueFromJSON(e)
			if err != nil {
				return nil, err
			}
			fields[k] = qv
		}
		return qdrant.NewValueFromFields(fields), nil
	}
	return nil, fmt.Errorf("unsupported JSON value %T", v)
}

// ---- settings ----

func metricName(d qdrant.Distance) string {
	switch d {
	case qdrant.Distance_Cosine:
		return "cosine"
	case qdrant.Distance_Euclid:
		return "l2"
	case qdrant.Distance_Dot:
		return "dot"
	case qdrant.Distance_Manhattan:
		return "l1"
	}
	return "unknown:" + d.String()
}

func distanceOf(metric string) (qdrant.Distance, error) {
	switch strings.ToLower(metric) {
	case "cosine":
		return qdrant.Distance_Cosine, nil
	case "l2":
		return qdrant.Distance_Euclid, nil
	case "dot":
		return qdrant.Distance_Dot, nil
	case "l1":
		return qdrant.Distance_Manhattan, nil
	}
	return 0, fmt.Errorf("metric %q: want one of cosine, l2, dot, l1", metric)
}

// normalizeOf says what the store does to vectors on insert: Qdrant
// L2-normalises them for Cosine.
func normalizeOf(d qdrant.Distance) string {
	if d == qdrant.Distance_Cosine {
		return "l2-on-insert"
	}
	return "none"
}

// quantizationString is a short canonical form of a quantization config:
//
//	none
//	scalar:int8:q=<quantile>:always_ram=<bool>   (unset quantile = 1, the whole range)
//	product:x<ratio>
//	binary[:encoding=<enc>][:query=<enc>]        (defaults omitted)
func quantizationString(q *qdrant.QuantizationConfig) string {
	switch o := q.GetQuantization().(type) {
	case nil:
		return "none"
	case *qdrant.QuantizationConfig_Scalar:
		typ := "int8"
		if o.Scalar.GetType() != qdrant.QuantizationType_Int8 {
			typ = strings.ToLower(o.Scalar.GetType().String())
		}
		quantile := float32(1)
		if o.Scalar.Quantile != nil {
			quantile = *o.Scalar.Quantile
		}
		return fmt.Sprintf("scalar:%s:q=%s:always_ram=%t", typ,
			strconv.FormatFloat(float64(quantile), 'g', -1, 32), o.Scalar.GetAlwaysRam())
	case *qdrant.QuantizationConfig_Product:
		return "product:" + o.Product.GetCompression().String()
	case *qdrant.QuantizationConfig_Binary:
		s := "binary"
		if e := o.Binary.GetEncoding(); e != qdrant.BinaryQuantizationEncoding_OneBit {
			s += ":encoding=" + snake(e.String())
		}
		if qe := o.Binary.GetQueryEncoding().GetSetting(); qe != qdrant.BinaryQuantizationQueryEncoding_Default {
			s += ":query=" + snake(qe.String())
		}
		return s
	}
	return "unknown"
}

// snake turns an enum name like "TwoBits" into "two_bits".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
