package subscriptions_test

import (
	"context"
	"testing"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// TestNodesAgreeAtOnce plays a second node on the same store that has not
// met the first node's writes in the change feed yet (it never runs its
// matcher): a topic and a subscription written through the first are
// usable through it at once. A topic whose url is a urn: can be named.
func TestNodesAgreeAtOnce(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	ctx := context.Background()
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	other, err := subscriptions.New(subscriptions.Config{Store: e.db, Events: e.db, BaseURL: e.url, Cursor: "other-node",
		ValidateEndpoint: channels.ValidateEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SubscriptionInterceptor().Validate(ctx, topicSub(rcv.srv.URL, encTopic, "empty"), nil); err != nil {
		t.Errorf("a Subscription naming a topic written through another node: %v", err)
	}
	id := e.mustDo(201, "POST", "/Subscription", topicSub(rcv.srv.URL, encTopic, "empty"))["id"].(string)
	if _, err := other.CheckAccess(ctx, id); err != nil {
		t.Errorf("Subscription/%s written through another node: %v", id, err)
	}

	urn := encounterTopic()
	urn["id"], urn["url"] = "urn-topic", "urn:uuid:5b0f0c52-3c2f-4d5e-9a43-0d1d2c9e8f11"
	e.mustDo(201, "PUT", "/SubscriptionTopic/urn-topic", urn)
	e.mustDo(201, "POST", "/Subscription", topicSub(rcv.srv.URL, urn["url"].(string), "empty"))
}
