package subscriptions

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/fhirsub/fhirsub/channels"
)

// publicReason is a delivery failure as Subscription.error (and so
// $status and notifications) shows it: the HTTP status and a fixed
// reason. What the endpoint answered and what the network said (resolved
// addresses, TLS and dial errors) go to the log only, so that a
// subscription cannot be used to read an internal page or map an
// internal network.
func publicReason(cause error) string {
	var de *channels.DeliveryError
	if !errors.As(cause, &de) {
		return "the delivery failed"
	}
	switch {
	case de.Status >= 300 && de.Status < 400:
		return fmt.Sprintf("the endpoint answered HTTP %d %s (redirects are not followed)", de.Status, http.StatusText(de.Status))
	case de.Status != 0:
		return fmt.Sprintf("the endpoint answered HTTP %d %s", de.Status, http.StatusText(de.Status))
	case errors.Is(cause, channels.ErrBlockedAddress):
		return "the endpoint's address is not allowed (loopback, private or link-local)"
	case errors.Is(cause, channels.ErrInvalidEndpoint), errors.Is(cause, channels.ErrInvalidHeader):
		return "the endpoint or a channel header is not valid"
	}
	return "the endpoint could not be reached or did not answer in time"
}
