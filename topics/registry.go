package topics

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Registry holds the known topics, keyed by canonical URL and by
// "url|version". It is safe for concurrent use. Topics are shared, not
// copied: callers must not modify a Topic after Put.
type Registry struct {
	mu        sync.RWMutex
	byURL     map[string]*Topic   // latest Put for each URL
	byVersion map[string]*Topic   // "url|version"
	byType    map[string][]*Topic // resource type → topics, sorted by URL
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byURL:     map[string]*Topic{},
		byVersion: map[string]*Topic{},
		byType:    map[string][]*Topic{},
	}
}

// Put adds or replaces a topic. The latest topic put for a URL is the one
// Get(url) returns; a versioned topic also stays reachable as
// "url|version".
func (r *Registry) Put(t *Topic) {
	if t == nil || t.URL == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byURL[t.URL] = t
	if t.Version != "" {
		r.byVersion[t.URL+"|"+t.Version] = t
	}
	r.reindex()
}

// Remove removes a topic: "url" removes every version of it,
// "url|version" that version only (Get(url) then falls back to another
// remaining version, if any).
func (r *Registry) Remove(url string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base, version, versioned := strings.Cut(url, "|")
	if !versioned {
		delete(r.byURL, base)
		for k := range r.byVersion {
			if strings.HasPrefix(k, base+"|") {
				delete(r.byVersion, k)
			}
		}
		r.reindex()
		return
	}
	delete(r.byVersion, url)
	if cur := r.byURL[base]; cur != nil && cur.Version == version {
		delete(r.byURL, base)
		var keys []string
		for k := range r.byVersion {
			if strings.HasPrefix(k, base+"|") {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			r.byURL[base] = r.byVersion[keys[len(keys)-1]]
		}
	}
	r.reindex()
}

// Get returns the topic with the canonical URL, or with "url|version".
func (r *Registry) Get(url string) (*Topic, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if strings.Contains(url, "|") {
		t, ok := r.byVersion[url]
		if !ok {
			// a topic put without a version answers to no versioned key
			base, version, _ := strings.Cut(url, "|")
			if t2 := r.byURL[base]; t2 != nil && t2.Version == version {
				return t2, true
			}
		}
		return t, ok
	}
	t, ok := r.byURL[url]
	return t, ok
}

// All returns the current topic of every URL, sorted by URL.
func (r *Registry) All() []*Topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Topic, 0, len(r.byURL))
	for _, t := range r.byURL {
		out = append(out, t)
	}
	slices.SortFunc(out, byURL)
	return out
}

// ByResourceType returns the topics with a trigger on the resource type,
// sorted by URL. The slice is the caller's.
func (r *Registry) ByResourceType(rt string) []*Topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.byType[rt])
}

func byURL(a, b *Topic) int { return cmp.Compare(a.URL, b.URL) }

// reindex rebuilds byType; r.mu must be held for writing. Registries hold
// tens of topics, so rebuilding is cheaper than bookkeeping.
func (r *Registry) reindex() {
	clear(r.byType)
	for _, t := range r.byURL {
		for _, rt := range t.ResourceTypes() {
			r.byType[rt] = append(r.byType[rt], t)
		}
	}
	for _, list := range r.byType {
		slices.SortFunc(list, byURL)
	}
}
