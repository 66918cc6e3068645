package subscriptions

import "errors"

// PublicReason is implemented by Sender failures that can say what went
// wrong in words a client may read (channels.DeliveryError does): the
// HTTP status and a fixed reason, never what the endpoint answered or
// what the network said.
type PublicReason interface {
	PublicReason() string
}

// publicReason is a delivery failure as Subscription.error (and so
// $status and notifications) shows it. What the endpoint answered and
// what the network said (resolved addresses, TLS and dial errors) go to
// the log only, so that a subscription cannot be used to read an internal
// page or map an internal network.
func publicReason(cause error) string {
	var pr PublicReason
	if !errors.As(cause, &pr) {
		return "the delivery failed"
	}
	return pr.PublicReason()
}
