// Package delivery holds the mechanics of rest-hook delivery that do not
// depend on what a subscription is: the work queue with its fairness
// between receivers (Queue), the timers of retries, heartbeats and ends in
// a heap (Schedule), and the retry backoff (Backoff). The subscription
// Manager drives them by subscription id.
package delivery
