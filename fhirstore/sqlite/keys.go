package sqlite

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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

// Folded token keys. search.Keys gives every token two keys: its code
// alone ("8867-4") and its system and code ("http://loinc.org|8867-4",
// "|final" without a system). As two rows they sit in two places of the
// search_keys index, and a write dirties a leaf page for each: for an
// Observation, the four token parameters' codes were four of the ten or
// so pages a create wrote to the WAL. A row (value, sys) with a system
// stands for both keys, value and sys|value; every other key is a row of
// its own whose sys is alone. No system a row is split into can be
// alone: sys is the text before the key's first '|'.
const alone = "|"

// keyRow is one row of search_keys (without type and id).
type keyRow struct{ param, value, sys string }

// foldKeys returns the rows that stand for keys: a key "s|v" whose code
// part "v" is also a key of the same parameter becomes the row (v, s),
// which also stands for "v"; every key not stood for so is a row alone.
// The rows are distinct; their order follows keys'.
func foldKeys(keys []search.Key) []keyRow {
	if !distinctSorted(keys) {
		keys = slices.Clone(keys)
		slices.SortFunc(keys, compareKeys)
		keys = slices.Compact(keys)
	}
	covered := make([]bool, len(keys)) // stood for by a row of another key
	paired := make([]bool, len(keys))  // folded into a row with its code
	rows := make([]keyRow, 0, len(keys))
	for i, k := range keys {
		sys, code, ok := strings.Cut(k.Value, "|")
		if !ok {
			continue
		}
		if j, found := slices.BinarySearchFunc(keys, search.Key{Param: k.Param, Value: code}, compareKeys); found {
			rows = append(rows, keyRow{k.Param, code, sys})
			paired[i], covered[j] = true, true
		}
	}
	for i, k := range keys {
		if !paired[i] && !covered[i] {
			rows = append(rows, keyRow{k.Param, k.Value, alone})
		}
	}
	return rows
}

// diffKeys returns the rows of next's keys missing from prev's (to
// insert) and the rows of prev's missing from next's (to delete).
func diffKeys(prev, next []search.Key) (added, removed []keyRow) {
	add := foldKeys(next)
	if len(prev) == 0 {
		return add, nil
	}
	gone := foldKeys(prev)
	inPrev := make(map[keyRow]bool, len(gone))
	for _, r := range gone {
		inPrev[r] = true
	}
	inNext := make(map[keyRow]bool, len(add))
	for _, r := range add {
		inNext[r] = true
		if !inPrev[r] {
			added = append(added, r)
		}
	}
	for _, r := range gone {
		if !inNext[r] {
			removed = append(removed, r)
		}
	}
	return added, removed
}

func compareKeys(a, b search.Key) int {
	return cmp.Or(cmp.Compare(a.Param, b.Param), cmp.Compare(a.Value, b.Value))
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
