package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/store"
)

// Metrics is the broker's Prometheus registry. Broker counters are read
// from broker.Stats at scrape time, so the hot path only does its atomic
// adds; reload metrics are observed by the Loader.
type Metrics struct {
	Registry *prometheus.Registry

	authRevision  prometheus.Gauge
	reloadSeconds prometheus.Histogram
	reloads       *prometheus.CounterVec
	adminRefused  *prometheus.CounterVec
}

// NewMetrics registers the broker's metrics, Go runtime and process metrics.
func NewMetrics(srv *broker.Server) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		authRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fleetmq_auth_revision", Help: "Revision of the auth bundle in force (0 before the first).",
		}),
		reloadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fleetmq_auth_reload_duration_seconds", Help: "Time to parse, compile and swap in an auth bundle, and re-check live sessions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetmq_auth_reloads_total", Help: "Auth bundles received, by result (applied, unchanged, stale, invalid, inconsistent: sharded file mid-update).",
		}, []string{"result"}),
		adminRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetmq_admin_refused_total", Help: "Admin API requests and connections refused, by reason (unauthorized, too_large, timeout, bad_request).",
		}, []string{"reason"}),
	}
	for _, r := range refusalReasons {
		m.adminRefused.WithLabelValues(r) // present at 0 before the first
	}
	reg.MustRegister(m.authRevision, m.reloadSeconds, m.reloads, m.adminRefused,
		statsCollector{srv},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) reload(result string) {
	if m != nil {
		m.reloads.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.adminRefused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) applied(revision int64, took time.Duration) {
	if m != nil {
		m.reloads.WithLabelValues("applied").Inc()
		m.authRevision.Set(float64(revision))
		m.reloadSeconds.Observe(took.Seconds())
	}
}

var (
	descConnected   = prometheus.NewDesc("fleetmq_clients_connected", "Clients connected now.", nil, nil)
	descConnects    = prometheus.NewDesc("fleetmq_connections_total", "Accepted MQTT connections.", nil, nil)
	descSessions    = prometheus.NewDesc("fleetmq_sessions", "Sessions held, online and offline.", nil, nil)
	descSubs        = prometheus.NewDesc("fleetmq_subscriptions", "Subscriptions in the index.", nil, nil)
	descRetained    = prometheus.NewDesc("fleetmq_retained_messages", "Retained messages held.", nil, nil)
	descMsgsIn      = prometheus.NewDesc("fleetmq_messages_received_total", "PUBLISH packets received from clients, by QoS.", []string{"qos"}, nil)
	descMsgsOut     = prometheus.NewDesc("fleetmq_messages_sent_total", "PUBLISH packets sent to clients, by QoS.", []string{"qos"}, nil)
	descBytesIn     = prometheus.NewDesc("fleetmq_bytes_received_total", "Bytes of MQTT packets received.", nil, nil)
	descBytesOut    = prometheus.NewDesc("fleetmq_bytes_sent_total", "Bytes written to clients.", nil, nil)
	descDropped     = prometheus.NewDesc("fleetmq_messages_dropped_total", "Deliveries dropped: full queues, slow consumers, oversize for the client, expired, refused publishes.", nil, nil)
	descProtoErrors = prometheus.NewDesc("fleetmq_protocol_errors_total", "Connections closed for malformed or invalid packets.", nil, nil)
	descAuthFail    = prometheus.NewDesc("fleetmq_auth_failures_total", "CONNECTs refused for credentials or authorization.", nil, nil)
	descDenied      = prometheus.NewDesc("fleetmq_acl_denials_total", "ACL denials, by action (publish, subscribe, deliver).", []string{"action"}, nil)
	descRevoked     = prometheus.NewDesc("fleetmq_sessions_revoked_total", "Sessions ended by an auth reload.", nil, nil)
	descForeign     = prometheus.NewDesc("fleetmq_foreign_session_connects_total", "CONNECTs with the client id of a session another user owns, by outcome (refused, discarded).", []string{"outcome"}, nil)

	descUnauthenticated  = prometheus.NewDesc("fleetmq_clients_unauthenticated", "Connections open that have not completed CONNECT yet.", nil, nil)
	descPreConnectClosed = prometheus.NewDesc("fleetmq_preconnect_closed_total", "Connections closed before CONNECT completed, by reason (timeout: connectTimeout passed; too_large: first packet over maxConnectPacketSize; limit: maxUnauthenticated reached at accept).", []string{"reason"}, nil)
	descThrottled        = prometheus.NewDesc("fleetmq_reads_throttled_total", "Times a connection stopped being read because its output backlog passed maxPendingBytes.", nil, nil)
)

// Quota and guessing-defence metrics (a block of their own, so other additions merge cleanly).
var (
	descRetainedBytes = prometheus.NewDesc("fleetmq_retained_bytes", "What retained messages weigh against the retained limits: topic, payload and properties.", nil, nil)
	descWills         = prometheus.NewDesc("fleetmq_wills_discarded_total", "Wills discarded instead of published, by reason (revoked: a reload took the session's rights away; reserved_topic: a $-topic; denied: the publisher may not publish there).", []string{"reason"}, nil)
	descQuota         = prometheus.NewDesc("fleetmq_quota_exceeded_total", "Requests refused by a quota, by quota (subscriptions, retained; a user's connections, publish_rate).", []string{"quota"}, nil)
	descAuthThrottled = prometheus.NewDesc("fleetmq_auth_throttled_total", "CONNECTs refused without a password check, by reason: source or username backing off after failures, busy (no hashing slot in time).", []string{"reason"}, nil)
)

// statsCollector turns a broker.Stats snapshot into metrics at scrape time.
type statsCollector struct{ srv *broker.Server }

func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descConnects, descSessions, descSubs, descRetained, descMsgsIn,
		descMsgsOut, descBytesIn, descBytesOut, descDropped, descProtoErrors, descAuthFail, descDenied, descRevoked,
		descForeign,
		descUnauthenticated, descPreConnectClosed, descThrottled,
		descRetainedBytes, descQuota, descAuthThrottled, descWills} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descConnected, float64(s.ClientsConnected))
	counter(descConnects, s.ConnectsTotal)
	gauge(descSessions, float64(s.Sessions))
	gauge(descSubs, float64(s.Subscriptions))
	gauge(descRetained, float64(s.Retained))
	for q := range 3 {
		counter(descMsgsIn, s.MessagesReceived[q], strconv.Itoa(q))
		counter(descMsgsOut, s.MessagesSent[q], strconv.Itoa(q))
	}
	counter(descBytesIn, s.BytesReceived)
	counter(descBytesOut, s.BytesSent)
	counter(descDropped, s.MessagesDropped)
	counter(descProtoErrors, s.ProtocolErrors)
	counter(descAuthFail, s.AuthFailures)
	counter(descDenied, s.PublishDenied, "publish")
	counter(descDenied, s.SubscribeDenied, "subscribe")
	counter(descDenied, s.DeliveryDenied, "deliver")
	counter(descRevoked, s.Revoked)
	counter(descForeign, s.TakeoverRefused, "refused")
	counter(descForeign, s.TakeoverDiscarded, "discarded")
	gauge(descUnauthenticated, float64(s.Unauthenticated))
	counter(descPreConnectClosed, s.ConnectTimeouts, "timeout")
	counter(descPreConnectClosed, s.ConnectTooLarge, "too_large")
	counter(descPreConnectClosed, s.UnauthenticatedRefused, "limit")
	counter(descThrottled, s.ReadsThrottled)
	gauge(descRetainedBytes, float64(s.RetainedBytes))
	counter(descQuota, s.SubscriptionQuotaExceeded, "subscriptions")
	counter(descQuota, s.RetainedQuotaExceeded, "retained")
	counter(descQuota, s.ConnectionQuotaExceeded, "connections")
	counter(descQuota, s.PublishRateExceeded, "publish_rate")
	counter(descWills, s.WillsRevoked, "revoked")
	counter(descWills, s.WillsReservedTopic, "reserved_topic")
	counter(descWills, s.WillsDenied, "denied")
	counter(descAuthThrottled, s.AuthThrottledSource, "source")
	counter(descAuthThrottled, s.AuthThrottledUser, "username")
	counter(descAuthThrottled, s.AuthBusy, "busy")
}

// StoreStats is what the store metrics read; *store.Bolt has it.
type StoreStats interface{ Stats() store.Stats }

// WatchStore adds the store's metrics (a broker started with --data-dir).
func (m *Metrics) WatchStore(s StoreStats) { m.Registry.MustRegister(storeCollector{s}) }

var (
	descStoreCommits    = prometheus.NewDesc("fleetmq_store_commits_total", "Group commits: log records written, each one fdatasync.", nil, nil)
	descStoreWrites     = prometheus.NewDesc("fleetmq_store_writes_total", "Store writes made durable.", nil, nil)
	descStoreLogBytes   = prometheus.NewDesc("fleetmq_store_log_bytes_total", "Bytes appended to the write-ahead log.", nil, nil)
	descStoreCommitSecs = prometheus.NewDesc("fleetmq_store_commit_seconds_total", "Time spent writing and syncing log records (divide by commits for the mean commit latency).", nil, nil)
	descStoreCkpts      = prometheus.NewDesc("fleetmq_store_checkpoints_total", "Log segments applied to the database file.", nil, nil)
	descStoreCkptWrites = prometheus.NewDesc("fleetmq_store_checkpoint_writes_total", "Writes those applied, after dropping the ones a later write overrode.", nil, nil)
	descStorePending    = prometheus.NewDesc("fleetmq_store_pending_writes", "Writes queued for the next group commit.", nil, nil)
	descStoreReplayed   = prometheus.NewDesc("fleetmq_store_replayed_writes", "Writes replayed from the log when the store was opened (non-zero after a crash).", nil, nil)
	descStoreFailed     = prometheus.NewDesc("fleetmq_store_failed", "1 once a store write failed: nothing is acknowledged after it; restart the broker.", nil, nil)
	storeDescs          = []*prometheus.Desc{descStoreCommits, descStoreWrites, descStoreLogBytes, descStoreCommitSecs, descStoreCkpts, descStoreCkptWrites, descStorePending, descStoreReplayed, descStoreFailed}
)

type storeCollector struct{ s StoreStats }

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s.Stats()
	failed := 0.0
	if s.Failed {
		failed = 1
	}
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v float64
	}{
		{descStoreCommits, prometheus.CounterValue, float64(s.Commits)},
		{descStoreWrites, prometheus.CounterValue, float64(s.Ops)},
		{descStoreLogBytes, prometheus.CounterValue, float64(s.LogBytes)},
		{descStoreCommitSecs, prometheus.CounterValue, s.CommitSeconds},
		{descStoreCkpts, prometheus.CounterValue, float64(s.Checkpoints)},
		{descStoreCkptWrites, prometheus.CounterValue, float64(s.CheckpointOps)},
		{descStorePending, prometheus.GaugeValue, float64(s.Pending)},
		{descStoreReplayed, prometheus.GaugeValue, float64(s.Replayed)},
		{descStoreFailed, prometheus.GaugeValue, failed},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, m.v)
	}
}
