package fhirstore

import "sync"

// Notifier broadcasts "something was committed" to any number of waiters
// without goroutines: C returns a channel that the next Notify closes, and
// Notify installs a fresh channel for later waiters. The zero value is not
// ready; use NewNotifier. Safe for concurrent use.
//
// Store.Wait implementations take C first, then check the committed
// sequence, then block on the channel, so a commit between the check and
// the block is never missed.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a ready Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// C returns the channel the next Notify will close.
func (n *Notifier) C() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes every goroutine blocked on a channel obtained from C before
// this call.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
