package topics

import (
	"fmt"
	"regexp"
	"strings"
)

// The R4 representation of a SubscriptionTopic (Backport IG 1.2.0) is a
// Basic resource whose code is fhir-types#SubscriptionTopic and whose
// elements are cross-version extensions, either
// http://hl7.org/fhir/{4.3|5.0}/StructureDefinition/extension-SubscriptionTopic.{element}
// or, for the metadata, http://hl7.org/fhir/StructureDefinition/artifact-{element}.
// unwrapBasic turns it into the equivalent SubscriptionTopic JSON.

const (
	fhirTypesSystem = "http://hl7.org/fhir/fhir-types"
	artifactPrefix  = "http://hl7.org/fhir/StructureDefinition/artifact-"
)

var crossVersionTopic = regexp.MustCompile(`^http://hl7\.org/fhir/[0-9]+\.[0-9]+/StructureDefinition/extension-SubscriptionTopic\.([A-Za-z]+)$`)

// artifactElements are the artifact-* extensions read as topic metadata.
var artifactElements = map[string]bool{
	"url": true, "version": true, "name": true, "title": true, "status": true,
	"date": true, "description": true,
}

// listElements are the repeating elements of SubscriptionTopic and its
// backbone elements; every other element appears at most once.
var listElements = map[string]bool{
	"identifier": true, "derivedFrom": true, "contact": true, "useContext": true,
	"jurisdiction": true, "resourceTrigger": true, "eventTrigger": true,
	"canFilterBy": true, "notificationShape": true, "supportedInteraction": true,
	"comparator": true, "modifier": true, "include": true, "revInclude": true,
}

func unwrapBasic(b map[string]any) (map[string]any, error) {
	if !isTopicCode(b["code"]) {
		return nil, &ValidationError{Element: "Basic.code",
			Message: "a Basic-wrapped topic needs code " + fhirTypesSystem + "#SubscriptionTopic"}
	}
	st := map[string]any{"resourceType": "SubscriptionTopic"}
	for _, key := range []string{"extension", "modifierExtension"} {
		v, ok := b[key]
		if !ok || v == nil {
			continue
		}
		exts, ok := v.([]any)
		if !ok {
			return nil, &ValidationError{Element: "Basic." + key, Message: "must be an array"}
		}
		for i, raw := range exts {
			path := fmt.Sprintf("Basic.%s[%d]", key, i)
			ext, ok := raw.(map[string]any)
			if !ok {
				return nil, &ValidationError{Element: path, Message: "must be an object"}
			}
			u, _ := ext["url"].(string)
			name := topicElement(u)
			if name == "" {
				if key == "modifierExtension" {
					return nil, &ValidationError{Element: path, Message: fmt.Sprintf("unknown modifier extension %q", u)}
				}
				continue // other extensions on Basic do not change the topic
			}
			val, err := extensionValue(ext, path)
			if err != nil {
				return nil, err
			}
			if err := setElement(st, name, val, path); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

// topicElement returns the SubscriptionTopic element an extension URL
// stands for, or "".
func topicElement(u string) string {
	if m := crossVersionTopic.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	if name, ok := strings.CutPrefix(u, artifactPrefix); ok && artifactElements[name] {
		return name
	}
	return ""
}

func isTopicCode(v any) bool {
	cc, ok := v.(map[string]any)
	if !ok {
		return false
	}
	codings, _ := cc["coding"].([]any)
	for _, c := range codings {
		m, _ := c.(map[string]any)
		if m["system"] == fhirTypesSystem && m["code"] == "SubscriptionTopic" {
			return true
		}
	}
	return false
}

// extensionValue returns an extension's value[x], or, for a complex
// extension, the object built from its relative-URL sub-extensions.
func extensionValue(ext map[string]any, path string) (any, error) {
	var val any
	found := 0
	for k, v := range ext {
		if len(k) > 5 && strings.HasPrefix(k, "value") && k[5] >= 'A' && k[5] <= 'Z' {
			val = v
			found++
		}
	}
	subs, hasSubs := ext["extension"].([]any)
	switch {
	case found > 1:
		return nil, &ValidationError{Element: path, Message: "more than one value[x]"}
	case found == 1 && hasSubs && len(subs) > 0:
		return nil, &ValidationError{Element: path, Message: "both a value and sub-extensions"}
	case found == 1:
		return val, nil
	case !hasSubs || len(subs) == 0:
		return nil, &ValidationError{Element: path, Message: "neither a value nor sub-extensions"}
	}
	obj := map[string]any{}
	for i, raw := range subs {
		sp := fmt.Sprintf("%s.extension[%d]", path, i)
		sub, ok := raw.(map[string]any)
		if !ok {
			return nil, &ValidationError{Element: sp, Message: "must be an object"}
		}
		u, _ := sub["url"].(string)
		if u == "" {
			return nil, &ValidationError{Element: sp + ".url", Message: "missing"}
		}
		if strings.Contains(u, ":") {
			continue // an extension on the element (e.g. backport-related-query)
		}
		v, err := extensionValue(sub, sp)
		if err != nil {
			return nil, err
		}
		if err := setElement(obj, u, v, sp); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

func setElement(obj map[string]any, name string, v any, path string) error {
	if listElements[name] {
		list, _ := obj[name].([]any)
		obj[name] = append(list, v)
		return nil
	}
	if _, dup := obj[name]; dup {
		return &ValidationError{Element: path, Message: fmt.Sprintf("%s given more than once", name)}
	}
	obj[name] = v
	return nil
}
