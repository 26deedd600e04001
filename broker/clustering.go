package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/broker/outbox"
)

// Clustering glue: with Options.Cluster set, the broker is one node of a
// cluster (broker/cluster) and shares one topic space with the others.
// What a local client (or its will) publishes is routed locally as
// always, then handed to the cluster; what other nodes publish arrives in
// receiveRemote and is routed to the local sessions only. The topic index
// tells the node which filters its sessions hold, so NATS carries to it
// only what it can deliver. Without Options.Cluster none of this runs.

// startCluster joins the cluster; New calls it before restoring sessions,
// so restored subscriptions register their interest like new ones.
func (s *Server) startCluster(cfg cluster.Config) error {
	if cfg.Log == nil {
		cfg.Log = s.log
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = int32(min(s.lim.MaxPacketSize, 64<<20))
	}
	n, err := cluster.Start(cfg, s.receiveRemote)
	if err != nil {
		return err
	}
	s.cluster = n
	return nil
}

// forward hands a message published on this node to the other nodes.
// $SYS messages (no origin) stay local: each node reports its own.
func (s *Server) forward(r *routed) {
	if s.cluster == nil || r.remote || r.origin == nil {
		return
	}
	if err := s.cluster.Publish(r.message()); err != nil {
		s.log.Warn("Message not forwarded to the cluster", "topic", string(r.topic), "err", err)
	}
}

// receiveRemote routes a message another node published to the sessions
// of this one, and keeps it when it is retained.
func (s *Server) receiveRemote(m *outbox.Message) {
	now := time.Now()
	if m.Expired(now.UnixNano()) {
		s.stats.MessagesDropped.Add(1)
		return
	}
	r := routedOf(m, nil, now)
	r.remote = true
	s.route(&r)
}

// clusterInterest tells the cluster a filter gained or lost its first or
// last subscription on this node.
func (s *Server) clusterInterest(filter string, add bool) {
	if s.cluster == nil {
		return
	}
	if add {
		s.cluster.Subscribe(filter)
	} else {
		s.cluster.Unsubscribe(filter)
	}
}

// ClusterPeers are the nodes this one has a route to; nil when the broker
// is not clustered.
func (s *Server) ClusterPeers() []string {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.Peers()
}

// ClusterMeshed reports whether the node reaches the other nodes of its
// cluster, all but itself, with their interest known (cluster.Node.Meshed);
// true when the broker is not clustered.
func (s *Server) ClusterMeshed(others int) bool {
	if s.cluster == nil {
		return true
	}
	return s.cluster.Meshed(others)
}

// ClusterStats are the cluster node's counters; zero when not clustered.
func (s *Server) ClusterStats() cluster.Stats {
	if s.cluster == nil {
		return cluster.Stats{}
	}
	return s.cluster.Stats()
}

// indexUnsubscribe removes a subscription from the index and, when there
// was one, its interest from the cluster.
func (s *Server) indexUnsubscribe(st *clientState, group, filter string) {
	if s.index.Unsubscribe(st, group, filter) {
		s.clusterInterest(filter, false)
	}
}

// leaveCluster closes the node once Shutdown has ended the sessions.
func (s *Server) leaveCluster() {
	if s.cluster != nil {
		s.clusterOnce.Do(s.cluster.Close)
	}
}
