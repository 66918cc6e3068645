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

// Folded parameters. Parameters of one resource often share a value:
// Observation's subject and patient ("Patient/1"), code and combo-code
// (a code without components). A search probes search_keys by value for
// every parameter at once (read.go) and lets the query's own match drop
// what it does not want, so one row of a value stands for the value under
// every parameter of the resource: a resource has one row per (value,
// sys), the one of the first parameter in order. A search does not look
// at the parameter a row names; a write's diff (diffKeys) and delete find
// the row by it, which foldKeys makes the same for the same keys. An
// Observation of the load client writes 4 rows instead of 6.

// keyRow is one row of search_keys (without type and id).
type keyRow struct{ param, value, sys string }

// foldKeys returns the rows that stand for keys: a key "s|v" whose code
// part "v" is also a key of the same parameter becomes the row (v, s),
// which also stands for "v"; every key not stood for so is a row alone;
// rows of one (value, sys) under several parameters are one, of the first
// parameter. The rows are distinct.
func foldKeys(keys []search.Key) []keyRow {
	return oneParam(foldTokens(keys))
}

// foldTokens folds each parameter's token keys (see alone).
func foldTokens(keys []search.Key) []keyRow {
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

// oneParam keeps one row of each (value, sys), the one of the first
// parameter, in place (rows' order otherwise). A few rows are compared
// with those kept; many (a large resource) are looked up in a map.
func oneParam(rows []keyRow) []keyRow {
	var at map[[2]string]int
	if len(rows) > 32 {
		at = make(map[[2]string]int, len(rows))
	}
	out := rows[:0]
	for _, r := range rows {
		i := -1
		if at != nil {
			if j, ok := at[[2]string{r.value, r.sys}]; ok {
				i = j
			}
		} else {
			i = slices.IndexFunc(out, func(o keyRow) bool { return o.value == r.value && o.sys == r.sys })
		}
		switch {
		case i < 0:
			if at != nil {
				at[[2]string{r.value, r.sys}] = len(out)
			}
			out = append(out, r)
		case r.param < out[i].param:
			out[i].param = r.param
		}
	}
	return out
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
