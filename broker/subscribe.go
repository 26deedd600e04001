package broker

import (
	"strings"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// handleSubscribe adds subscriptions, answers SUBACK, then sends the
// retained messages the new subscriptions ask for [MQTT-3.8.4].
func (c *client) handleSubscribe(flags byte, body []byte) error {
	s := c.srv
	var sp packets.Subscribe
	if err := sp.Decode(c.version, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	var subID uint32
	if len(sp.Props.SubscriptionIDs) > 0 {
		subID = sp.Props.SubscriptionIDs[0]
	}
	principal := c.st.getPrincipal()
	maxSubs := s.maxSubscriptions(principal) // the user's limit replaces the broker's
	codes := make([]packets.ReasonCode, len(sp.Subscriptions))
	var replays []replay

	st := c.st
	st.mu.Lock()
	for i, req := range sp.Subscriptions {
		group, filter, shared, err := topic.ParseShared(req.Filter)
		switch {
		case err != nil || !packets.ValidTopicFilter(filter):
			codes[i] = codeFor(c.version, packets.SubackFailure, packets.TopicFilterInvalid)
			continue
		case len(req.Filter) > s.lim.MaxTopicLength || strings.Count(filter, "/")+1 > s.lim.MaxTopicLevels:
			codes[i] = codeFor(c.version, packets.SubackFailure, packets.TopicFilterInvalid)
			continue
		case !principal.CanSubscribe(filter):
			s.stats.SubscribeDenied.Add(1)
			codes[i] = codeFor(c.version, packets.SubackFailure, packets.NotAuthorized)
			continue
		}
		if _, replace := st.subs[req.Filter]; !replace && len(st.subs) >= maxSubs {
			// Subscribing again to a filter replaces it [MQTT-3.8.4-3]: no
			// new one, so never over the quota.
			s.stats.SubscriptionQuotaExceeded.Add(1)
			codes[i] = codeFor(c.version, packets.SubackFailure, packets.QuotaExceeded)
			continue
		}
		granted := min(req.QoS, 2)
		sub := topic.Subscription{
			Filter: filter, Group: group, QoS: granted, ID: subID,
			NoLocal: req.NoLocal, RetainAsPublished: req.RetainAsPublished, RetainHandling: req.RetainHandling,
		}
		if c.version != packets.V5 {
			sub.NoLocal, sub.RetainAsPublished, sub.RetainHandling = false, false, 0
		}
		existed := st.subscribeLocked(req.Filter, sub)
		codes[i] = packets.ReasonCode(granted)
		// Retained messages are not sent to shared subscriptions
		// [MQTT-4.8.2]; retain handling 1 sends them only to a new
		// subscription, 2 never [MQTT-3.3.1-9..11].
		if !shared && (sub.RetainHandling == 0 || (sub.RetainHandling == 1 && !existed)) {
			replays = append(replays, replay{filter: filter, sub: sub})
		}
	}
	durable := st.journal.durable()
	st.mu.Unlock()

	// A durable session's SUBACK waits until the subscriptions are stored;
	// retained messages follow it.
	c.afterDurable(durable, func() { c.subscribed(&sp, codes, principal, replays) })
	return nil
}

// replay is a retained-message replay a new subscription asks for.
type replay struct {
	filter string
	sub    topic.Subscription
}

// subscribed answers SUBACK and sends the retained messages the new
// subscriptions ask for.
func (c *client) subscribed(sp *packets.Subscribe, codes []packets.ReasonCode, principal Principal, replays []replay) {
	s, st := c.srv, c.st
	ack := packets.Suback{PacketID: sp.PacketID, ReasonCodes: codes}
	c.writePacket(func(b []byte) []byte { return ack.Append(b, c.version) })

	now := time.Now()
	for _, rp := range replays {
		s.retained.Match(rp.filter, func(t string, m *outbox.Message) bool {
			if m.Expired(now.UnixNano()) {
				s.dropExpiredRetained(t, m)
				return true
			}
			if !principal.CanRead(bytesOf(t)) {
				return true
			}
			r := routed{topic: bytesOf(t), msg: m, now: now,
				pub: packets.Publish{QoS: m.QoS, Payload: m.Payload, Props: m.Props}}
			var ids []uint32
			if rp.sub.ID != 0 {
				ids = []uint32{rp.sub.ID}
			}
			// A retained replay is sent with RETAIN set [MQTT-3.3.1-8].
			st.deliver(&r, min(m.QoS, rp.sub.QoS), true, ids)
			return true
		})
	}
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK.
func (c *client) handleUnsubscribe(flags byte, body []byte) error {
	var up packets.Unsubscribe
	if err := up.Decode(c.version, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	ack := packets.Unsuback{PacketID: up.PacketID}
	if c.version == packets.V5 {
		ack.ReasonCodes = make([]packets.ReasonCode, len(up.Filters))
	}
	st := c.st
	st.mu.Lock()
	for i, f := range up.Filters {
		if !st.unsubscribeLocked(f) && c.version == packets.V5 {
			ack.ReasonCodes[i] = packets.NoSubscriptionExisted
		}
	}
	durable := st.journal.durable()
	st.mu.Unlock()
	c.afterDurable(durable, func() { c.writePacket(func(b []byte) []byte { return ack.Append(b, c.version) }) })
	return nil
}
