package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
)

// errProtocol carries the v5 reason code to send before closing.
type errProtocol struct {
	code packets.ReasonCode
	err  error
}

func (e *errProtocol) Error() string { return e.err.Error() }

func (e *errProtocol) Unwrap() error { return e.err }

func protocolErr(code packets.ReasonCode, format string, args ...any) error {
	return &errProtocol{code: code, err: fmt.Errorf(format, args...)}
}

// errClientClosed ends the read loop after a normal DISCONNECT.
var errClientClosed = errors.New("client disconnected")

// errRefused ends the read loop after a CONNACK that refused the client
// (credentials, limits, shutdown): logged where decided, not a protocol error.
var errRefused = errors.New("connection refused")

// handle dispatches one packet. body aliases the read buffer.
func (c *client) handle(first byte, body []byte) error {
	t, flags := packets.Type(first>>4), first&0x0F
	if c.st == nil {
		if t != packets.CONNECT {
			// [MQTT-3.1.0-1] the first packet must be CONNECT.
			return protocolErr(packets.ProtocolError, "first packet is %s, not CONNECT", t)
		}
		return c.handleConnect(flags, body)
	}
	switch t {
	case packets.PUBLISH:
		return c.handlePublish(flags, body)
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		return c.handleAck(t, flags, body)
	case packets.SUBSCRIBE:
		return c.handleSubscribe(flags, body)
	case packets.UNSUBSCRIBE:
		return c.handleUnsubscribe(flags, body)
	case packets.PINGREQ:
		if err := packets.DecodeEmpty(t, flags, body); err != nil {
			return &errProtocol{code: packets.Code(err), err: err}
		}
		c.writePacket(func(b []byte) []byte { return packets.AppendEmpty(b, packets.PINGRESP) })
		return nil
	case packets.DISCONNECT:
		return c.handleDisconnect(flags, body)
	case packets.AUTH:
		if c.version != packets.V5 {
			return protocolErr(packets.ProtocolError, "AUTH is a v5 packet")
		}
		// No enhanced authentication method is configured, so no AUTH
		// exchange was started; any AUTH is a protocol error [MQTT-4.12.0-1].
		return protocolErr(packets.ProtocolError, "AUTH received but no authentication method is in use")
	case packets.CONNECT:
		// [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
		return protocolErr(packets.ProtocolError, "second CONNECT")
	default:
		return protocolErr(packets.ProtocolError, "%s is not a packet a client sends", t)
	}
}

func (c *client) handleDisconnect(flags byte, body []byte) error {
	if c.version != packets.V5 {
		if err := packets.DecodeEmpty(packets.DISCONNECT, flags, body); err != nil {
			return &errProtocol{code: packets.Code(err), err: err}
		}
		c.life.normalClose.Store(true)
		return errClientClosed
	}
	var d packets.Disconnect
	if err := d.Decode(c.version, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	if d.Props.HasSessionExpiry {
		st := c.st
		st.mu.Lock()
		// [MQTT-3.14.2-2] a session that expired at disconnect cannot be revived.
		zeroAtConnect := st.expiryAtConnect == 0
		if zeroAtConnect && d.Props.SessionExpiry != 0 {
			st.mu.Unlock()
			return protocolErr(packets.ProtocolError, "DISCONNECT sets a session expiry after CONNECT set 0")
		}
		st.expiry = min(d.Props.SessionExpiry, c.srv.lim.MaxSessionExpiry)
		st.mu.Unlock()
	}
	// 0x04 Disconnect with Will Message: the will is published as if the
	// connection had dropped [MQTT-3.14.4-3 does not apply].
	if d.ReasonCode != packets.DisconnectWithWill {
		c.life.normalClose.Store(true)
	}
	return errClientClosed
}

// handleAck runs the outbound QoS 1/2 handshakes and the inbound PUBREL.
func (c *client) handleAck(t packets.Type, flags byte, body []byte) error {
	var a packets.Ack
	if err := a.Decode(c.version, t, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	st := c.st
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch t {
	case packets.PUBACK:
		if o := st.inflight.Find(a.PacketID); o != nil && o.QoS == 1 {
			st.journal.forget(o.Seq) // before Remove: o points into the window
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		}
		// An unknown id is ignored: it may be a late ack of a delivery the
		// session already dropped.
	case packets.PUBREC:
		o := st.inflight.Find(a.PacketID)
		switch {
		case o == nil || o.QoS != 2:
			c.writeAck(packets.PUBREL, a.PacketID, packets.PacketIdentifierNotFound, "")
		case a.ReasonCode.IsError():
			// The receiver refused it; the exchange ends here [MQTT-4.3.3].
			st.journal.forget(o.Seq)
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		default:
			if o.State != outbox.AwaitComp {
				o.State = outbox.AwaitComp
				st.journal.put(store.Delivery{Delivery: o.Delivery, Inflight: true, State: outbox.AwaitComp, PacketID: o.ID})
			}
			// Once PUBREL is out the receiver forgets the id: a restart
			// must not find the delivery still awaiting PUBREC and resend it.
			id := a.PacketID
			c.afterDurable(st.journal.durable(), func() { c.writeAck(packets.PUBREL, id, packets.Success, "") })
		}
	case packets.PUBCOMP:
		if o := st.inflight.Find(a.PacketID); o != nil && o.QoS == 2 {
			st.journal.forget(o.Seq)
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		}
	case packets.PUBREL:
		code := packets.Success
		if _, ok := st.inboundQoS2[a.PacketID]; ok {
			delete(st.inboundQoS2, a.PacketID)
		} else {
			code = packets.PacketIdentifierNotFound
		}
		st.journal.releasedQoS2(a.PacketID)
		// PUBCOMP frees the id for the client: the release must be durable
		// first, or a restart would take the id's next message for a resend.
		c.afterDurable(st.journal.durable(), func() { c.writeAck(packets.PUBCOMP, a.PacketID, code, "") })
	}
	return nil
}

// writeAck sends PUBACK, PUBREC, PUBREL or PUBCOMP. The reason string is
// left out when the client asked for no problem information or when it
// would make the packet larger than the client accepts [MQTT-3.1.2-29].
func (c *client) writeAck(t packets.Type, id uint16, code packets.ReasonCode, reason string) {
	a := packets.Ack{Type: t, PacketID: id, ReasonCode: code}
	if c.version == packets.V5 && c.problemInfo && reason != "" {
		a.Props.ReasonString = reason
		if c.maxPacketOut > 0 && uint32(a.Size(c.version)) > c.maxPacketOut {
			a.Props.ReasonString = ""
		}
	}
	c.writePacket(func(b []byte) []byte { return a.Append(b, c.version) })
}

// afterDurable runs fn, which writes a reply (an ack), once what the
// packet being answered wrote to the store is durable. It runs at once
// when nothing was written (persisted false) and no earlier reply of this
// connection still waits, so replies never overtake each other.
func (c *client) afterDurable(persisted bool, fn func()) {
	s := c.srv
	if s.store == nil || (!persisted && c.held.Load() == 0) {
		fn()
		return
	}
	c.held.Add(1)
	s.store.Sync(func(err error) {
		if err != nil {
			// Not durable, so not acknowledged: the client will send it again.
			s.log.Error("Store write failed; closing the connection without acknowledging", "client", c.id, "err", err)
			c.kick(packets.UnspecifiedError, "store write failed")
		} else {
			fn()
		}
		c.held.Add(-1)
	})
}
