package broker

import "github.com/fleetmq/fleetmq/broker/store"

// putLocked records a delivery of a durable session. Caller holds st.mu.
func (st *clientState) putLocked(d store.Delivery) {
	if st.durable && d.Seq != 0 {
		st.srv.store.PutDelivery(st.id, d)
	}
}

// forgetLocked deletes a finished or dropped delivery of a durable
// session. Caller holds st.mu.
func (st *clientState) forgetLocked(seq uint64) {
	if st.durable && seq != 0 {
		st.srv.store.DeleteDelivery(st.id, seq)
	}
}
