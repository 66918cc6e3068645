package subscriptions

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// allowedExtensions lists, per element (FHIRPath without indexes), the
// extension URLs the server understands there. Any other extension, and
// every modifierExtension, is rejected: a subscription must never be
// accepted with a requirement the server would silently ignore.
var allowedExtensions = map[string][]string{
	"Subscription":                 {ExtAccess},
	"Subscription.criteria":        {ExtFilterCriteria},
	"Subscription.channel":         {ExtHeartbeatPeriod, ExtTimeout, ExtMaxCount, ExtHMACSecret},
	"Subscription.channel.payload": {ExtPayloadContent},
}

// checkExtensions walks the whole resource and rejects every extension it
// does not understand, naming it. Cross-version extensions
// (http://hl7.org/fhir/5.0/…) and lookalikes of the Backport IG URLs are
// refused here.
func checkExtensions(body map[string]any) error {
	return walkExtensions(body, "Subscription", "Subscription")
}

func walkExtensions(v any, expr, key string) error {
	switch x := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			child := x[k]
			switch k {
			case "extension":
				if err := checkExtensionList(child, expr, key); err != nil {
					return err
				}
				continue
			case "modifierExtension":
				return unsupported(expr+".modifierExtension", "modifier extensions are not supported")
			case "resourceType":
				continue
			}
			if !nested(child) {
				continue
			}
			name := strings.TrimPrefix(k, "_")
			if err := walkExtensions(child, expr+"."+name, key+"."+name); err != nil {
				return err
			}
		}
	case []any:
		for i, it := range x {
			if !nested(it) {
				continue
			}
			if err := walkExtensions(it, fmt.Sprintf("%s[%d]", expr, i), key); err != nil {
				return err
			}
		}
	}
	return nil
}

// nested reports whether v can hold an extension (an object or an
// array): the paths of the others are not built (they were 4% of the
// bytes allocated creating subscriptions).
func nested(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

func checkExtensionList(v any, expr, key string) error {
	list, ok := v.([]any)
	if !ok {
		return invalid(expr+".extension", "must be an array")
	}
	for i, raw := range list {
		path := fmt.Sprintf("%s.extension[%d]", expr, i)
		ext, ok := raw.(map[string]any)
		if !ok {
			return invalid(path, "must be an object")
		}
		url, _ := ext["url"].(string)
		if url == ExtChannelType {
			return unsupported(path, "custom channel types (backport-channel-type) are not supported")
		}
		if !slices.Contains(allowedExtensions[key], url) {
			return unsupported(path, "extension %q is not supported on %s", url, key)
		}
		if _, nested := ext["extension"]; nested {
			return unsupported(path+".extension", "extension %q takes a single value, not nested extensions", url)
		}
		if _, mod := ext["modifierExtension"]; mod {
			return unsupported(path+".modifierExtension", "modifier extensions are not supported")
		}
	}
	return nil
}
