// Package delivery holds the mechanics of rest-hook delivery that do not
// depend on what a subscription is: the work queue with its fairness
// between receivers (Queue), the timers of retries, heartbeats and ends in
// a heap (Schedule), the retry backoff (Backoff), and the lease Keeper
// that shares the partitions of delivery between the nodes of one store.
// The subscription pipeline drives them by subscription id.
package delivery
