package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/mongo"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// openMongo opens the MongoDB backend selected by MONGODB_URI.
func openMongo(ctx context.Context, cfg *config, log *slog.Logger) (fhirstore.Store, string, error) {
	db, err := mongo.Open(ctx, mongo.Config{URI: cfg.MongoURI, Database: cfg.MongoDatabase, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	return db, fmt.Sprintf("mongodb database %q", cfg.MongoDatabase), nil
}

var _ subscriptions.Leases = (*mongo.DB)(nil)

// cluster is how this node shares rest-hook delivery: with the other
// nodes of the store through its leases when the store has them (MongoDB),
// alone otherwise (the embedded store serves one process).
func (a *app) cluster(cfg *config) subscriptions.Cluster {
	leases, ok := a.store.(subscriptions.Leases)
	if !ok {
		return subscriptions.Cluster{}
	}
	a.log.Info("rest-hook delivery partitioned by leases", "node", cfg.NodeID, "partitions", cfg.Partitions, "lease_ttl", cfg.LeaseTTL)
	return subscriptions.Cluster{Leases: leases, NodeID: cfg.NodeID, Partitions: cfg.Partitions, LeaseTTL: cfg.LeaseTTL}
}
