package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/mongo"
)

// openMongo opens the MongoDB backend selected by MONGODB_URI.
func openMongo(ctx context.Context, cfg *config, log *slog.Logger) (fhirstore.Store, string, error) {
	db, err := mongo.Open(ctx, mongo.Config{URI: cfg.MongoURI, Database: cfg.MongoDatabase, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	return db, fmt.Sprintf("mongodb database %q (transactions=%v)", cfg.MongoDatabase, db.Transactions()), nil
}
