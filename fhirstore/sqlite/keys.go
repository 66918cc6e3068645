package sqlite

import (
	"encoding/json"
	"fmt"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// encodeKeys encodes a key list for resources.keys: JSON [[param, value], …],
// or NULL (nil) when there are none.
func encodeKeys(keys []search.Key) (any, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.Param, k.Value}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("encode search keys: %w", err)
	}
	return string(b), nil
}

// decodeKeys reverses encodeKeys; "" gives no keys.
func decodeKeys(s string) ([]search.Key, error) {
	if s == "" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("decode search keys: %w", err)
	}
	keys := make([]search.Key, len(pairs))
	for i, p := range pairs {
		keys[i] = search.Key{Param: p[0], Value: p[1]}
	}
	return keys, nil
}

// diffKeys returns the keys of next missing from prev (to insert) and the
// keys of prev missing from next (to delete), each without duplicates.
func diffKeys(prev, next []search.Key) (added, removed []search.Key) {
	if len(prev) == 0 && distinctSorted(next) {
		return next, nil // a create: search.Keys gives sorted, distinct keys
	}
	inPrev := make(map[search.Key]bool, len(prev))
	for _, k := range prev {
		inPrev[k] = true
	}
	inNext := make(map[search.Key]bool, len(next))
	for _, k := range next {
		if !inNext[k] {
			inNext[k] = true
			if !inPrev[k] {
				added = append(added, k)
			}
		}
	}
	for k := range inPrev {
		if !inNext[k] {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// distinctSorted reports whether keys are in strictly increasing order, so
// without duplicates.
func distinctSorted(keys []search.Key) bool {
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if a.Param > b.Param || a.Param == b.Param && a.Value >= b.Value {
			return false
		}
	}
	return true
}
