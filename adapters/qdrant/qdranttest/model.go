package qdranttest

import (
	"encoding/hex"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"
)

// pid is a point id: an unsigned integer or a UUID. Qdrant orders all
// integer ids before all UUIDs; integers numerically, UUIDs by their 128-bit
// value, which is the byte order of the lower-case hex form.
type pid struct {
	isUUID bool
	num    uint64
	uuid   string // lower-case hyphenated
}

func (a pid) less(b pid) bool {
	if a.isUUID != b.isUUID {
		return !a.isUUID
	}
	if a.isUUID {
		return a.uuid < b.uuid
	}
	return a.num < b.num
}

func (a pid) String() string {
	if a.isUUID {
		return a.uuid
	}
	return strconv.FormatUint(a.num, 10)
}

func (a pid) proto() *qdrant.PointId {
	if a.isUUID {
		return qdrant.NewIDUUID(a.uuid)
	}
	return qdrant.NewIDNum(a.num)
}

// parsePID converts a wire id; Qdrant accepts any UUID spelling its uuid
// crate parses (hyphenated, simple, braced, urn:uuid:) and normalises it.
func parsePID(id *qdrant.PointId) (pid, error) {
	if id == nil {
		return pid{}, errBadInput("Point id is required")
	}
	switch o := id.GetPointIdOptions().(type) {
	case *qdrant.PointId_Num:
		return pid{num: o.Num}, nil
	case *qdrant.PointId_Uuid:
		u, ok := normaliseUUID(o.Uuid)
		if !ok {
			return pid{}, errBadInput("Unable to parse UUID: %s", o.Uuid)
		}
		return pid{isUUID: true, uuid: u}, nil
	default:
		return pid{}, errBadInput("Unable to parse point id: no id given")
	}
}

func normaliseUUID(s string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "urn:uuid:")
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	switch len(t) {
	case 36:
		if t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
			return "", false
		}
		t = t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	case 32:
	default:
		return "", false
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", false
	}
	return t[0:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:], true
}

type point struct {
	id      pid
	vectors map[string][]float32 // by vector name; "" for the unnamed vector
	// sparse and multi hold the point's sparse vectors (indices ascending,
	// as Qdrant stores them) and multivectors, by name.
	sparse  map[string]sparseVec
	multi   map[string][][]float32
	payload map[string]*qdrant.Value
	version uint64 // operation id of the upsert that wrote it
}

// collection is one stored collection. Guarded by Server.mu.
type collection struct {
	name   string
	config *qdrant.CollectionConfig
	// vectors maps vector name to its params; the unnamed vector is "".
	vectors map[string]*qdrant.VectorParams
	// single is true when the collection was created with a single
	// unnamed vector (VectorsConfig.Params), false for a ParamsMap.
	single bool
	points map[pid]*point
	// order is the ids sorted; valid unless dirty.
	order []pid
	dirty bool
}

func (c *collection) sorted() []pid {
	if c.dirty {
		c.order = c.order[:0]
		for id := range c.points {
			c.order = append(c.order, id)
		}
		sort.Slice(c.order, func(i, j int) bool { return c.order[i].less(c.order[j]) })
		c.dirty = false
	}
	return c.order
}

// rank is the number of points ordered before id.
func (c *collection) rank(id pid) int {
	ids := c.sorted()
	return sort.Search(len(ids), func(i int) bool { return !ids[i].less(id) })
}

func (c *collection) put(p *point) {
	if _, ok := c.points[p.id]; !ok {
		c.dirty = true
	}
	c.points[p.id] = p
}

func (c *collection) remove(id pid) {
	if _, ok := c.points[id]; ok {
		delete(c.points, id)
		c.dirty = true
	}
}

// info builds the CollectionInfo Qdrant returns from Get.
func (c *collection) info() *qdrant.CollectionInfo {
	n := uint64(len(c.points))
	return &qdrant.CollectionInfo{
		Status:              qdrant.CollectionStatus_Green,
		OptimizerStatus:     &qdrant.OptimizerStatus{Ok: true},
		SegmentsCount:       defaultSegments,
		Config:              proto.Clone(c.config).(*qdrant.CollectionConfig),
		PayloadSchema:       map[string]*qdrant.PayloadSchemaInfo{},
		PointsCount:         &n,
		IndexedVectorsCount: proto.Uint64(0),
		UpdateQueue:         &qdrant.UpdateQueueInfo{},
	}
}

// cosinePreprocess normalises v the way Qdrant's Cosine metric does on
// insert and on query: in float32, v / sqrt(sum x²), unless the squared
// length is below f32 epsilon (zero vector) or already within 1e-6 of 1.
func cosinePreprocess(v []float32) []float32 {
	var sq float32
	for _, x := range v {
		sq += float32(x * x) // explicit conversion: no fused multiply-add
	}
	if sq < epsilonF32 || float32(math.Abs(float64(sq-1))) <= 1e-6 {
		return v
	}
	length := float32(math.Sqrt(float64(sq)))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x / length
	}
	return out
}

// epsilonF32 is Rust's f32::EPSILON (2^-23).
const epsilonF32 float32 = 1.1920929e-07

const defaultSegments = 2

// sparseVec is a stored sparse vector.
type sparseVec struct {
	indices []uint32
	values  []float32
}

// hasVector reports whether the point holds a vector of that name, of any
// kind.
func (p *point) hasVector(name string) bool {
	if _, ok := p.vectors[name]; ok {
		return true
	}
	if _, ok := p.sparse[name]; ok {
		return true
	}
	_, ok := p.multi[name]
	return ok
}
