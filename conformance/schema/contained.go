package schema

import (
	"sort"
	"strconv"
)

// containedIssues checks the rules of contained resources and local
// references that FHIR R4 states as invariants of DomainResource and
// Reference, which a JSON schema cannot say:
//
//	dom-2  a contained resource contains no resources;
//	dom-3  a contained resource is referred to from elsewhere in the
//	       resource ("#id"), or refers to its container ("#");
//	dom-4  a contained resource has no meta.versionId or meta.lastUpdated;
//	dom-5  a contained resource has no meta.security;
//	ref-1  a local reference ("#id") names a contained resource.
//
// Resources inside res that are not contained (a Bundle's entries, a
// Parameters' values) are checked as resources of their own.
func containedIssues(path string, res map[string]any) []Issue {
	if !anyLocal(res) {
		return nil // most resources: nothing contained, no "#…" anywhere
	}
	c := containedCheck{ids: map[string]bool{}, pointed: map[string]bool{}}
	contained, _ := res["contained"].([]any)
	for i, v := range contained {
		r, _ := v.(map[string]any)
		at := path + ".contained[" + strconv.Itoa(i) + "]"
		if _, nested := r["contained"]; nested {
			c.add(at, "a contained resource may not contain resources (dom-2)")
		}
		meta, _ := r["meta"].(map[string]any)
		if _, ok := meta["versionId"]; ok {
			c.add(at+".meta.versionId", "a contained resource has no version of its own (dom-4)")
		}
		if _, ok := meta["lastUpdated"]; ok {
			c.add(at+".meta.lastUpdated", "a contained resource has no lastUpdated of its own (dom-4)")
		}
		if _, ok := meta["security"]; ok {
			c.add(at+".meta.security", "a contained resource takes the security labels of its container (dom-5)")
		}
		if id, ok := r["id"].(string); ok {
			c.ids[id] = true
		}
	}
	for k, v := range res {
		if k != "contained" {
			c.walk(path+"."+k, k, v, false)
		}
	}
	// the references of the contained resources count too, and "#" in one
	// of them is a reference to the container, which makes it referred to
	toContainer := make([]bool, len(contained))
	for i, v := range contained {
		r, _ := v.(map[string]any)
		before := c.toContainer
		c.toContainer = false
		for k, f := range r {
			c.walk(path+".contained["+strconv.Itoa(i)+"]."+k, k, f, true)
		}
		toContainer[i], c.toContainer = c.toContainer, before
	}
	for i, v := range contained {
		r, _ := v.(map[string]any)
		id, _ := r["id"].(string)
		if !toContainer[i] && (id == "" || !c.pointed["#"+id]) {
			c.add(path+".contained["+strconv.Itoa(i)+"]",
				"a contained resource must be referred to from the resource, or refer to it with \"#\" (dom-3)")
		}
	}
	for _, ref := range c.local {
		if !c.ids[ref.value[1:]] {
			c.add(ref.path, "the local reference "+ref.value+" names no contained resource (ref-1)")
		}
	}
	sort.SliceStable(c.issues, func(i, j int) bool { return c.issues[i].Path < c.issues[j].Path })
	return c.issues
}

// containedCheck gathers what containedIssues needs from one walk.
type containedCheck struct {
	ids     map[string]bool // ids of the contained resources
	pointed map[string]bool // every "#…" string of the resource
	local   []localRef      // Reference.reference values "#id"
	// toContainer is set when a walk meets a reference "#"
	toContainer bool
	issues      []Issue
}

type localRef struct{ path, value string }

func (c *containedCheck) add(path, msg string) {
	c.issues = append(c.issues, Issue{Path: path, Message: msg})
}

// walk records the local references under v, found at path as member
// key; a nested resource that is not contained is checked on its own.
func (c *containedCheck) walk(path, key string, v any, inContained bool) {
	switch x := v.(type) {
	case string:
		if len(x) == 0 || x[0] != '#' {
			return
		}
		c.pointed[x] = true
		switch {
		case x == "#":
			c.toContainer = c.toContainer || inContained
		case key == "reference":
			c.local = append(c.local, localRef{path: path, value: x})
		}
	case []any:
		for i, e := range x {
			c.walk(path+"["+strconv.Itoa(i)+"]", key, e, inContained)
		}
	case map[string]any:
		if _, ok := x["resourceType"]; ok {
			c.issues = append(c.issues, containedIssues(path, x)...)
			return
		}
		for k, f := range x {
			c.walk(path+"."+k, k, f, inContained)
		}
	}
}

// anyLocal reports whether v has a contained resource or a string that
// starts with "#" anywhere, nested resources included.
func anyLocal(v any) bool {
	switch x := v.(type) {
	case string:
		return len(x) > 0 && x[0] == '#'
	case []any:
		for _, e := range x {
			if anyLocal(e) {
				return true
			}
		}
	case map[string]any:
		if _, ok := x["contained"]; ok {
			return true
		}
		for _, f := range x {
			if anyLocal(f) {
				return true
			}
		}
	}
	return false
}
