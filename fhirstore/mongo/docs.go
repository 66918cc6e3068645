package mongo

import (
	"strconv"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Change states. A change is inserted pending (its seq reserved) and later
// set committed or aborted.
const (
	statePending   = "pending"
	stateCommitted = "committed"
	stateAborted   = "aborted"
)

// versionDoc is one document of the versions collection. Its _id,
// "Type/id/vid", decides which writer gets a version number. An aborted
// document is a placeholder inserted by a reader to settle a write that
// never finished; it is not a version of the resource.
type versionDoc struct {
	Key         string    `bson:"_id"`
	Type        string    `bson:"type"`
	ID          string    `bson:"id"`
	Vid         int64     `bson:"vid"`
	Seq         int64     `bson:"seq"`
	Deleted     bool      `bson:"deleted"`
	Aborted     bool      `bson:"aborted"`
	LastUpdated time.Time `bson:"lastUpdated"`
	Body        string    `bson:"body,omitempty"`
}

// resourceDoc is one document of the resources collection: the current
// version of Type/id (_id "Type/id") with its flattened search keys.
type resourceDoc struct {
	Key         string    `bson:"_id"`
	Type        string    `bson:"type"`
	ID          string    `bson:"id"`
	Vid         int64     `bson:"vid"`
	Seq         int64     `bson:"seq"`
	Deleted     bool      `bson:"deleted"`
	LastUpdated time.Time `bson:"lastUpdated"`
	Body        string    `bson:"body,omitempty"`
	Keys        []string  `bson:"keys"`
}

// changeDoc is one document of the changes collection; _id is the seq.
type changeDoc struct {
	Seq         int64     `bson:"_id"`
	State       string    `bson:"state"`
	Type        string    `bson:"type"`
	ID          string    `bson:"id"`
	Vid         int64     `bson:"vid"`
	Prev        int64     `bson:"prev"`
	Interaction string    `bson:"interaction"`
	Time        time.Time `bson:"time"`
	Reserved    time.Time `bson:"reserved"`
}

func resourceKey(typ, id string) string { return typ + "/" + id }

func versionKey(typ, id string, vid int64) string {
	return typ + "/" + id + "/" + strconv.FormatInt(vid, 10)
}

// flattenKey is the stored form of a search key: "param|value". Parameter
// codes never contain '|', so the first '|' separates the two.
func flattenKey(k search.Key) string { return k.Param + "|" + k.Value }

func flattenKeys(keys []search.Key) []string {
	out := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		s := flattenKey(k)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func formatVid(vid int64) string { return strconv.FormatInt(vid, 10) }

func (v *versionDoc) resource() *fhirstore.Resource {
	r := &fhirstore.Resource{
		Type: v.Type, ID: v.ID, VersionID: formatVid(v.Vid),
		LastUpdated: v.LastUpdated.UTC(), Deleted: v.Deleted,
	}
	if !v.Deleted {
		r.Body = []byte(v.Body)
	}
	return r
}

func (r *resourceDoc) resource() *fhirstore.Resource {
	res := &fhirstore.Resource{
		Type: r.Type, ID: r.ID, VersionID: formatVid(r.Vid),
		LastUpdated: r.LastUpdated.UTC(), Deleted: r.Deleted,
	}
	if !r.Deleted {
		res.Body = []byte(r.Body)
	}
	return res
}

func (c *changeDoc) change() fhirstore.Change {
	ch := fhirstore.Change{
		Seq: c.Seq, Type: c.Type, ID: c.ID, VersionID: formatVid(c.Vid),
		Interaction: fhirstore.Interaction(c.Interaction), Time: c.Time.UTC(),
	}
	if c.Prev > 0 {
		ch.PreviousVersionID = formatVid(c.Prev)
	}
	return ch
}

// currentFromVersion builds the resources document for version v,
// extracting the search keys from its body.
func currentFromVersion(v *versionDoc) (*resourceDoc, error) {
	r := &resourceDoc{
		Key: resourceKey(v.Type, v.ID), Type: v.Type, ID: v.ID, Vid: v.Vid, Seq: v.Seq,
		Deleted: v.Deleted, LastUpdated: v.LastUpdated, Keys: []string{},
	}
	if v.Deleted {
		return r, nil
	}
	r.Body = v.Body
	body, err := fhirstore.Decode([]byte(v.Body))
	if err != nil {
		return nil, err
	}
	keys, err := search.Keys(body)
	if err != nil {
		return nil, err
	}
	r.Keys = flattenKeys(keys)
	return r, nil
}
