// Package match holds the matcher's index primitives: KeyIndex files
// subscriptions under the exact search keys of their most selective
// equality clause (Selective), so that finding the candidates for a change
// costs the subscriptions that can match it, not all of them. The
// subscription Manager composes them per resource type and per topic.
package match
