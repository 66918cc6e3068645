// Package match is where a change meets the subscriptions: Tail reads the
// change feed once, in order, and hands each change to a Handler (the
// subscription pipeline's matcher), saving the cursor lazily past changes
// nobody is interested in and setting aside a change that keeps failing;
// KeyIndex files subscriptions under the exact search keys of their most
// selective equality clause (Selective), so that finding the candidates
// for a change costs the subscriptions that can match it, not all of them.
package match
