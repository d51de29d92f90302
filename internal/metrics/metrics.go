// Package metrics defines fanline's Prometheus metrics on a registry of their own, so
// tests can build several servers in one process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector fanline exports.
type Metrics struct {
	Registry *prometheus.Registry

	MessagesAccepted  prometheus.Counter
	MessagesDuplicate prometheus.Counter
	SendErrors        *prometheus.CounterVec // by code
	FanoutEntries     prometheus.Counter
	StreamAppends     prometheus.Counter   // read-fanout messages stored in a group stream
	FanoutLag         prometheus.Histogram // message creation -> timeline commit
	SendStageLag      prometheus.Histogram // message creation -> send stage stored it
	Connections       prometheus.Gauge
	PushesDropped     prometheus.Counter // slow connections closed
	RateLimited       prometheus.Counter // calls, frames and connections refused over a limit
	SendLatency       prometheus.Histogram
	SyncLatency       prometheus.Histogram
	DeadLetters       *prometheus.CounterVec // by topic: undecodable records set aside
	RecordsRefused    *prometheus.CounterVec // by topic: records of a newer version, retried

	// GroupChecks counts a gateway's checks of its group index by result (ok,
	// failed); GroupPushesUnchecked the large-group pushes not delivered because no
	// check could be made.
	GroupChecks          *prometheus.CounterVec
	GroupPushesUnchecked prometheus.Counter

	// The cold tier: segments written and messages moved into them, failed moves,
	// reads of cold segments, and the block cache.
	ColdSegments   prometheus.Counter
	ColdMessages   prometheus.Counter
	ColdMoveErrors prometheus.Counter
	ColdRead       prometheus.Histogram
	// ColdDeleted counts segments deleted by retention, ColdStray segment objects
	// no manifest named (a move or deletion cut short).
	ColdDeleted prometheus.Counter
	ColdStray   prometheus.Counter

	// Media: uploads by outcome (started, completed, failed), bytes stored,
	// thumbnails rendered, and objects deleted by the orphan sweep and retention.
	MediaUploads *prometheus.CounterVec
	MediaBytes   prometheus.Counter
	MediaThumbs  prometheus.Counter
	MediaOrphans prometheus.Counter
	MediaExpired prometheus.Counter
	MediaRender  prometheus.Histogram

	// BackendErrors counts failed calls to a networked engine, by backend (kafka,
	// redis); DispatchUnreachable a gateway's calls that never reached the
	// dispatch node; CSWait how long chats waited in a shop's queue for an agent.
	BackendErrors       *prometheus.CounterVec
	DispatchUnreachable prometheus.Counter
	CSWait              prometheus.Histogram
	// GroupPush is a large group's delivery time on a gateway: from a message's
	// creation to its frame queued for the last of the group's members connected there.
	GroupPush prometheus.Histogram
}

// waitBuckets spans a customer-service queue's waits, a second to an hour.
var waitBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}

var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}

// New builds and registers the collectors, with Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		MessagesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_messages_accepted_total", Help: "Sends acknowledged as new messages."}),
		MessagesDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_messages_duplicate_total", Help: "Sends answered with an earlier msg_id (client retries)."}),
		SendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanline_send_errors_total", Help: "Sends refused, by error code."}, []string{"code"}),
		FanoutEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_fanout_entries_total", Help: "Entries appended to user timelines."}),
		StreamAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_stream_appends_total", Help: "Read-fanout (large group) messages appended to a group stream."}),
		FanoutLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fanline_fanout_lag_seconds", Help: "Time from a message's creation to its timeline commit.", Buckets: latencyBuckets}),
		SendStageLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fanline_send_stage_lag_seconds", Help: "Time from a message's creation to the send stage storing it.", Buckets: latencyBuckets}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fanline_connections", Help: "Open WebSocket connections."}),
		PushesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_slow_connections_closed_total", Help: "Connections closed because their send queue was full."}),
		GroupChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanline_group_member_checks_total", Help: "Checks of a gateway's group -> connections index with the pipeline, by result."},
			[]string{"result"}),
		GroupPushesUnchecked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_group_pushes_unchecked_total", Help: "Large-group pushes not delivered because the gateway could not check the group's members."}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fanline_rate_limited_total", Help: "Calls, WebSocket frames and connections refused as over a rate or connection limit."}),
		SendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fanline_send_seconds", Help: "Time to acknowledge a send.", Buckets: latencyBuckets}),
		SyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fanline_sync_seconds", Help: "Time to answer a sync.", Buckets: latencyBuckets}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanline_queue_dead_letters_total", Help: "Queue records a stage could not decode, moved to the dead-letter topic, by source topic."}, []string{"topic"}),
		RecordsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanline_queue_records_refused_total", Help: "Times a stage refused a record written by a newer version (it stops there and retries), by topic."}, []string{"topic"}),
	}
	m.ColdSegments = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_cold_segments_total", Help: "Cold segments written, verified and recorded."})
	m.ColdMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_cold_messages_total", Help: "Messages moved from the warm store into cold segments."})
	m.ColdMoveErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_cold_move_errors_total", Help: "Moves to the cold tier that failed (retried on the next pass)."})
	m.ColdRead = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fanline_cold_read_seconds", Help: "Time of one read from a cold segment.", Buckets: latencyBuckets})
	m.ColdDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_cold_segments_deleted_total", Help: "Cold segments deleted by retention."})
	m.ColdStray = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_cold_stray_objects_deleted_total", Help: "Cold segment objects no manifest named, deleted (a move or deletion cut short)."})
	r.MustRegister(m.ColdSegments, m.ColdMessages, m.ColdMoveErrors, m.ColdRead, m.ColdDeleted, m.ColdStray)
	m.MediaUploads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanline_media_uploads_total", Help: "Media uploads by outcome: started, completed, failed."}, []string{"outcome"})
	for _, o := range []string{"started", "completed", "failed"} {
		m.MediaUploads.WithLabelValues(o)
	}
	m.MediaBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_media_bytes_total", Help: "Bytes of media uploads completed."})
	m.MediaThumbs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_media_thumbnails_total", Help: "Thumbnails rendered (each once, then stored)."})
	m.MediaRender = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fanline_media_thumbnail_seconds", Help: "Time to render one thumbnail.", Buckets: latencyBuckets})
	m.MediaOrphans = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_media_orphans_deleted_total", Help: "Uploads deleted because no message referred to them within media.orphan_ttl."})
	m.MediaExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_media_retention_deleted_total", Help: "Media objects deleted with their conversation's history by retention."})
	m.BackendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanline_backend_errors_total", Help: "Failed calls to a networked engine, by backend (kafka, redis)."}, []string{"backend"})
	for _, b := range []string{"kafka", "redis"} { // exported at 0 before the first error
		m.BackendErrors.WithLabelValues(b)
	}
	m.DispatchUnreachable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fanline_dispatch_unreachable_total", Help: "A gateway's calls to the dispatch node that got no answer (refused, timed out, TLS failed)."})
	m.CSWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fanline_cs_wait_seconds", Help: "Time a customer-service chat waited in its shop's queue before an agent got it.", Buckets: waitBuckets})
	m.GroupPush = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fanline_group_push_seconds", Help: "Large-group delivery on a gateway: message creation -> its frame queued for every member connected there.", Buckets: latencyBuckets})
	r.MustRegister(m.BackendErrors, m.DispatchUnreachable, m.CSWait, m.GroupPush)
	r.MustRegister(m.MediaUploads, m.MediaBytes, m.MediaThumbs, m.MediaRender, m.MediaOrphans, m.MediaExpired)
	r.MustRegister(m.MessagesAccepted, m.MessagesDuplicate, m.SendErrors, m.FanoutEntries, m.StreamAppends, m.FanoutLag,
		m.SendStageLag, m.Connections, m.PushesDropped, m.GroupChecks, m.GroupPushesUnchecked, m.RateLimited, m.SendLatency, m.SyncLatency,
		m.DeadLetters, m.RecordsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
