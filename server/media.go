package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fanline/fanline/groupstream"
	"github.com/fanline/fanline/internal/metrics"
	"github.com/fanline/fanline/media"
)

// mediaStore builds the media service on the cold tier's object store. Uploads
// sent to fanline itself (the dir store) are signed with a key derived from secret.
func (s *Server) mediaStore(m *metrics.Metrics, secret string, streams groupstream.Store) error {
	cfg := s.cfg.Media
	public := cfg.PublicURL
	if public == "" && s.cfg.Coldstore.Backend == "dir" {
		addr := s.ln.Addr().String()
		scheme := "http://"
		if s.cfg.Cluster.TLSCert != "" { // the API listener serves TLS (serverTLS)
			scheme = "https://"
		}
		public = scheme + addr
		if host, port, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host).IsUnspecified() {
			public = scheme + "localhost:" + port
			s.log.Warn("media.public_url is not set and addr listens on every interface: upload URLs name localhost, "+
				"which clients on other machines cannot reach; set media.public_url", "addr", s.cfg.Addr)
		}
	}
	key := []byte(nodeKey("media-upload:" + secret))
	var err error
	s.media, err = media.New(media.Config{Objects: s.objs, Secret: key, PublicURL: public, AllowedTypes: cfg.AllowedTypes,
		MaxBytes: int64(cfg.MaxBytes), PartSize: int64(cfg.PartSize), UploadTTL: time.Duration(cfg.UploadTTL),
		DownloadTTL: time.Duration(cfg.DownloadTTL), OrphanTTL: time.Duration(cfg.OrphanTTL),
		ThumbMaxSourceBytes: int64(cfg.ThumbMaxSourceBytes), Logger: s.log,
		MessageExists: func(ctx context.Context, id uint64) (bool, error) {
			_, err := streams.Message(ctx, id) // any tier
			if errors.Is(err, groupstream.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}}, m)
	s.mediaURL = public
	return err
}

// mediaExpired deletes the media of history retention deleted.
func (s *Server) mediaExpired(ctx context.Context, conv uint64, upTo time.Time) error {
	if s.media == nil {
		return nil
	}
	_, err := s.media.DeleteConversation(ctx, conv, upTo)
	return err
}

// checkMediaURL makes sure the URLs signed for clients lead somewhere: an upload
// URL that no client can reach is the media failure users meet most. New checks
// MinIO's public URL (a failure stops the start); Run tries fanline's own once it
// serves, and logs an error if it does not answer.
func (s *Server) checkMediaURL(ctx context.Context) error {
	base := s.cfg.Media.PublicURL
	path := "/minio/health/live"
	if s.media == nil || (base == "" && s.cfg.Coldstore.Backend == "minio") {
		return nil // signed for the endpoint fanline itself reaches
	}
	if s.cfg.Coldstore.Backend == "dir" {
		base, path = s.mediaURL, "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("media.public_url %s does not answer (%v): clients would get upload and download URLs they cannot reach", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("media.public_url %s answers %s to %s", base, resp.Status, path)
	}
	return nil
}
