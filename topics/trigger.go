package topics

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// Triggered reports whether the change fires the topic: whether any
// resourceTrigger of the change's resource type passes (see the package
// documentation for the exact rules). An evaluation error of one trigger does
// not hide another trigger that fires; when none fires, the errors are
// returned.
func (t *Topic) Triggered(c Change) (bool, error) {
	rt := c.ResourceType
	if rt == "" {
		rt = typeOf(c.Current)
		if rt == "" {
			rt = typeOf(c.Previous)
		}
	}
	switch c.Interaction {
	case Create, Update, Delete:
	default:
		return false, fmt.Errorf("topic %s: unknown interaction %q", t.URL, c.Interaction)
	}
	var errs []error
	for i := range t.Triggers {
		tr := &t.Triggers[i]
		if tr.Resource != rt || !tr.allows(c.Interaction) {
			continue
		}
		ok, err := tr.test(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %s: resourceTrigger[%d]: %w", t.URL, i, err))
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}

func typeOf(res map[string]any) string {
	s, _ := res["resourceType"].(string)
	return s
}

func (tr *Trigger) allows(interaction string) bool {
	return len(tr.Interactions) == 0 || slices.Contains(tr.Interactions, interaction)
}

// test applies the trigger's criteria to a change it applies to.
func (tr *Trigger) test(c Change) (bool, error) {
	if tr.FHIRPath != nil {
		ok, err := tr.testFHIRPath(c)
		if err != nil || !ok {
			return false, err
		}
	}
	if tr.Previous == nil && tr.Current == nil {
		return true, nil
	}
	return tr.testQuery(c)
}

func (tr *Trigger) testFHIRPath(c Change) (bool, error) {
	focus := c.Current
	if c.Interaction == Delete {
		focus = c.Previous
	}
	env := &fhirpath.Env{Vars: map[string]any{
		"current":  nilIfEmpty(c.Current),
		"previous": nilIfEmpty(c.Previous),
	}}
	ok, err := tr.FHIRPath.EvaluateBool(focus, env)
	if err != nil {
		return false, fmt.Errorf("fhirPathCriteria: %w", err)
	}
	return ok, nil
}

// nilIfEmpty turns a nil map into an untyped nil, which fhirpath reads as
// the empty collection.
func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// testQuery implements queryCriteria. previous and current are search
// tests of the previous and current versions. When the version a test needs
// does not exist, its result is resultForCreate (create; also an update
// whose previous version is unknown) or resultForDelete (delete), failing
// when that is absent. A test the topic does not give is neutral: passed
// under requireBoth, failed otherwise.
func (tr *Trigger) testQuery(c Change) (bool, error) {
	neutral := tr.RequireBoth
	prev, cur := neutral, neutral
	var err error

	switch {
	case tr.Previous == nil:
	case c.Interaction == Create || c.Previous == nil && c.Interaction == Update:
		prev = tr.ResultForCreate == TestPasses
	case c.Previous == nil:
		prev = false
	default:
		if prev, err = tr.Previous.Match(c.Previous); err != nil {
			return false, fmt.Errorf("queryCriteria.previous: %w", err)
		}
	}

	switch {
	case tr.Current == nil:
	case c.Interaction == Delete || c.Current == nil:
		cur = tr.ResultForDelete == TestPasses
	default:
		if cur, err = tr.Current.Match(c.Current); err != nil {
			return false, fmt.Errorf("queryCriteria.current: %w", err)
		}
	}

	if tr.RequireBoth {
		return prev && cur, nil
	}
	return prev || cur, nil
}
