package store

import (
	"encoding/binary"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// The Store's write methods: each builds the key and value of one
// operation and queues it (submit, in commit.go).

func (b *Bolt) SaveSession(clientID string, expiry uint32, disconnectedAt int64, owner Owner) {
	b.submit(op{kind: opPut, bucket: bSessions, key: []byte(clientID), val: encodeSession(expiry, disconnectedAt, owner)})
}

func (b *Bolt) DeleteSession(clientID string) {
	b.submit(op{kind: opDeleteSession, bucket: bSessions, key: []byte(clientID)})
}

func (b *Bolt) SaveSubscription(clientID, key string, sub topic.Subscription) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opPut, bucket: bSubs, key: k, val: encodeSubscription(sub)})
}

func (b *Bolt) DeleteSubscription(clientID, key string) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opDelete, bucket: bSubs, key: k})
}

func deliveryKey(clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientKey(make([]byte, 0, len(clientID)+10), clientID), seq)
}

func (b *Bolt) PutDelivery(clientID string, d Delivery) {
	b.submit(op{kind: opPut, bucket: bDeliveries, key: deliveryKey(clientID, d.Seq), val: encodeDelivery(&d)})
}

func (b *Bolt) DeleteDelivery(clientID string, seq uint64) {
	b.submit(op{kind: opDelete, bucket: bDeliveries, key: deliveryKey(clientID, seq)})
}

func inboundKey(clientID string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(nil, clientID), id)
}

func (b *Bolt) SaveInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opPut, bucket: bInbound, key: inboundKey(clientID, packetID), val: []byte{}})
}

func (b *Bolt) ReleaseInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opDelete, bucket: bInbound, key: inboundKey(clientID, packetID)})
}

func (b *Bolt) SaveWill(clientID string, w Will) {
	b.submit(op{kind: opPut, bucket: bWills, key: clientKey(nil, clientID), val: encodeWill(&w)})
}

func (b *Bolt) DeleteWill(clientID string) {
	b.submit(op{kind: opDelete, bucket: bWills, key: clientKey(nil, clientID)})
}

func (b *Bolt) SetRetained(m *outbox.Message) {
	b.submit(op{kind: opPut, bucket: bRetained, key: []byte(m.Topic), val: encodeRetained(m)})
}

func (b *Bolt) DeleteRetained(topic string) {
	b.submit(op{kind: opDelete, bucket: bRetained, key: []byte(topic)})
}

func (b *Bolt) Sync(done func(error)) {
	b.submit(op{kind: opSync, done: done})
}

var _ Store = (*Bolt)(nil)
