package groupstream

import (
	"strings"
	"testing"
	"time"

	"github.com/fanline/fanline/internal/cql/cqltest"
)

func TestCassandraStatements(t *testing.T) {
	cqltest.Check(t, CassandraSchema, cqlConv, cqlNewConv, cqlClaimConv, cqlPutMember, cqlDelMember, cqlMember,
		cqlMembers, cqlPair, cqlPutPair, cqlPutUserGroup, cqlDelUserGroup, cqlUserGroups, cqlPutLeft, cqlDelLeft,
		cqlLeft, cqlMessage, cqlPutMessage, cqlRecall, cqlPutHistory, cqlHistory, cqlPutStream, cqlStream,
		cqlRankAt, cqlSetRead, cqlRead, cqlReads, cqlDelRead, cqlPutAnnouncement, cqlAnnouncements, cqlDelAnnouncement,
		cqlPutPending, cqlPending, cqlDelPending, cqlRev, cqlFenceRev, cqlFenceNew)
	// Past memberships expire in Cassandra when the store stops returning them.
	if !strings.HasSuffix(cqlPutLeft, "USING TTL 2592000") || keepLeftFor != 2592000*time.Second {
		t.Errorf("left_groups TTL does not match keepLeftFor (%v): %s", keepLeftFor, cqlPutLeft)
	}
}

func TestCassandraBuckets(t *testing.T) {
	if streamBucket(65535) != 0 || streamBucket(65536) != 1 {
		t.Error("stream buckets are not 65,536 seqs")
	}
	// ~100-byte stream rows: a full bucket stays far below 100 MB.
	if size := (100 + 64) << streamBucketBits; size > 20<<20 {
		t.Errorf("a stream bucket holds %d MB", size>>20)
	}
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	b := idBucketAt(at)
	if idBucketAt(at.Add(24*time.Hour))-b > 1 || idBucketAt(at.Add(-60*24*time.Hour)) >= b {
		t.Errorf("history buckets: %d, next day %d, 60 days before %d", b, idBucketAt(at.Add(24*time.Hour)),
			idBucketAt(at.Add(-60*24*time.Hour)))
	}
	if idBucketAt(time.Unix(0, 0)) != 0 {
		t.Error("times before the id epoch are not bucket 0")
	}
	if nowHistoryBucket() <= idBucketAt(time.Now().Add(-time.Minute)) {
		t.Error("nowHistoryBucket is behind an id minted a minute ago")
	}
}
